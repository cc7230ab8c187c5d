package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// kind is a request type of the workload.
type kind uint8

const (
	kindInfo kind = iota
	kindBuy
	kindSend
	kindLogin
	numKinds
)

var kindNames = [numKinds]string{"info", "buy", "sendCoin", "login"}

func (k kind) String() string { return kindNames[k] }

// record is one logical request of the workload: its final answer after
// the client's retries.
type record struct {
	kind     kind
	start    time.Time
	end      time.Time
	code     int // final HTTP status; 0 = no answer
	attempts int
	failed   int // attempts answered 5xx or not at all
	key      string
	from, to int // user indexes
	amount   int // coins (sendCoin)
	item     string
}

// outcome classes.
func (r record) ok() bool     { return r.code == http.StatusOK }
func (r record) client() bool { return r.code >= 400 && r.code < 500 }
func (r record) failure() bool {
	return r.code == 0 || r.code >= 500
}

// recorder keeps every record, in order of completion.
type recorder struct {
	mu   sync.Mutex
	recs []record
}

func (r *recorder) add(rec record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}

func (r *recorder) all() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.recs...)
}

// firstOK returns when the first request of kind k started at or after
// since was answered 200.
func (r *recorder) firstOK(k kind, since time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first time.Time
	for i := len(r.recs) - 1; i >= 0; i-- {
		rec := r.recs[i]
		if rec.end.Before(since) {
			break // completion order: nothing earlier started after since
		}
		if rec.kind == k && rec.ok() && !rec.start.Before(since) && (first.IsZero() || rec.end.Before(first)) {
			first = rec.end
		}
	}
	return first, !first.IsZero()
}

// cheapItems keep the users buying for the whole run.
var cheapItems = []string{"pen", "socks", "cup"}

// workload offers requests at a fixed rate (open loop) with at most
// maxInflight in flight; arrivals beyond that are shed and counted.
type workload struct {
	c     *client
	rec   *recorder
	users []*user
	runID string
	rate  float64
	max   int64

	mu       sync.Mutex
	paused   bool
	inflight atomic.Int64
	shed     atomic.Int64
	seq      atomic.Int64
}

func (w *workload) run(ctx context.Context) {
	t := time.NewTicker(time.Duration(float64(time.Second) / w.rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.dispatch(ctx)
		}
	}
}

func (w *workload) dispatch(ctx context.Context) {
	w.mu.Lock()
	if w.paused {
		w.mu.Unlock()
		return
	}
	if w.inflight.Load() >= w.max {
		w.mu.Unlock()
		w.shed.Add(1)
		return
	}
	w.inflight.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.inflight.Add(-1)
		w.one(ctx)
	}()
}

// pause stops new requests and waits until those in flight have ended.
func (w *workload) pause(ctx context.Context, deadline time.Duration) error {
	w.mu.Lock()
	w.paused = true
	w.mu.Unlock()
	return waitFor(ctx, deadline, 20*time.Millisecond, func(context.Context) (bool, error) {
		return w.inflight.Load() == 0, nil
	})
}

func (w *workload) resume() {
	w.mu.Lock()
	w.paused = false
	w.mu.Unlock()
}

// one sends one request: 67% info, 15% buy, 15% sendCoin, 3% login. A few
// buys and transfers are refused on purpose (unknown item, an amount
// nobody has), so that "nothing answered 4xx moved money" is tested on
// every run, not only once users run out of coins.
func (w *workload) one(ctx context.Context) {
	n := len(w.users)
	rec := record{from: rand.IntN(n), to: -1, start: time.Now()}
	u := w.users[rec.from]
	var f func() answer
	switch p := rand.Float64(); {
	case p < 0.67:
		rec.kind = kindInfo
		f = func() answer { _, a := w.c.info(ctx, u); return a }
	case p < 0.82:
		rec.kind = kindBuy
		rec.item = cheapItems[rand.IntN(len(cheapItems))]
		if rand.IntN(30) == 0 {
			rec.item = "no-such-item"
		}
		rec.key = fmt.Sprintf("chaos-%s-%d", w.runID, w.seq.Add(1))
		f = func() answer { return w.c.buy(ctx, u, rec.item, rec.key) }
	case p < 0.97:
		rec.kind = kindSend
		rec.to = (rec.from + 1 + rand.IntN(n-1)) % n
		rec.amount = 1 + rand.IntN(5)
		if rand.IntN(25) == 0 {
			rec.amount = 1_000_000
		}
		rec.key = fmt.Sprintf("chaos-%s-%d", w.runID, w.seq.Add(1))
		to := w.users[rec.to].name
		f = func() answer { return w.c.send(ctx, u, to, rec.amount, rec.key) }
	default:
		rec.kind = kindLogin
		f = func() answer { return w.c.login(ctx, u) }
	}
	a, attempts, failed := workloadRetries.do(ctx, f)
	if ctx.Err() != nil && a.code == 0 {
		return // the run is over; not an answer of the system
	}
	rec.end, rec.code, rec.attempts, rec.failed = time.Now(), a.code, attempts, failed
	w.rec.add(rec)
}

// errDeadline: a condition did not hold in time.
var errDeadline = errors.New("deadline exceeded")

// waitFor polls cond every interval until it holds, fails, or the deadline
// passes (a bounded poll on a condition, not a sleep).
func waitFor(ctx context.Context, deadline, interval time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w after %s (last error: %w)", errDeadline, deadline, last)
			}
			return fmt.Errorf("%w after %s", errDeadline, deadline)
		case <-time.After(interval):
		}
	}
}
