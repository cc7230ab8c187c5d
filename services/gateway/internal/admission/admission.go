// Package admission bounds the requests the gateway works on at once, so
// that past its capacity the system answers the excess quickly with a
// refusal instead of answering everything late (or with errors).
//
// A Limiter admits up to Limit requests at once. A request that finds no
// free slot waits in a bounded FIFO queue (MaxQueue waiting at most) for at
// most QueueTimeout; a full queue or a wait that runs out refuses it with
// ErrOverloaded. So a refusal is answered within QueueTimeout plus a little,
// and the waiting memory is bounded.
//
// With a LatencyTarget the limit adapts between MinInFlight and MaxInFlight
// (additive increase, multiplicative decrease): every Window (once it holds
// MinSamples latencies of served requests), when more than a tenth of them
// took longer than the target (the window's p90 is above it) the limit
// shrinks by a tenth; otherwise, when the limit was reached in the window,
// it grows by a sixteenth (at least one). The latency of a request is from
// its admission to its release, the queue wait left out: it measures the
// backends, which is what the limit protects. Without a target the limit
// stays at MaxInFlight.
package admission

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOverloaded is the refusal: no slot was free within the queue's bounds.
var ErrOverloaded = errors.New("overloaded")

// Result is a decision of Acquire, as the metrics label it.
type Result string

// The decisions.
const (
	Admitted       Result = "admitted"
	RefusedFull    Result = "refused_queue_full" // the queue was full
	RefusedTimeout Result = "refused_timeout"    // waited QueueTimeout without a slot
	Canceled       Result = "canceled"           // the request's context ended while it waited
)

// Defaults of the adaptive limit.
const (
	DefaultWindow     = 250 * time.Millisecond
	DefaultMinSamples = 20
)

// Config is a Limiter's shape.
type Config struct {
	// MaxInFlight is the most requests admitted at once (required, >= 1).
	MaxInFlight int
	// MinInFlight is the adaptive limit's floor (default MaxInFlight/4,
	// at least 1; at most MaxInFlight).
	MinInFlight int
	// QueueTimeout is how long a request waits for a slot at most; 0: a
	// request that finds no free slot is refused at once.
	QueueTimeout time.Duration
	// MaxQueue bounds the requests waiting at once (default MaxInFlight).
	MaxQueue int
	// LatencyTarget turns the adaptive limit on (see the package comment);
	// 0: the limit is MaxInFlight.
	LatencyTarget time.Duration
	// Window is how often the adaptive limit may change (DefaultWindow).
	Window time.Duration
	// MinSamples is how many latencies a window needs (DefaultMinSamples).
	MinSamples int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Decided is told of every decision; nil: nobody.
	Decided func(Result)
}

// Stats is a Limiter's state (for the metrics).
type Stats struct {
	Limit    int
	InFlight int
	Waiting  int
}

// Limiter admits requests; see the package comment. It is safe for
// concurrent use.
type Limiter struct {
	cfg Config

	mu       sync.Mutex
	limit    float64
	inFlight int
	waiters  list.List // of *waiter, oldest first
	win      window
}

type waiter struct {
	ready   chan struct{} // closed when granted
	granted bool          // under mu
}

// window gathers the latencies of one adjustment window.
type window struct {
	start         time.Time
	samples, slow int
	saturated     bool // the limit was reached
}

// New returns a Limiter; it checks and completes cfg.
func New(cfg Config) (*Limiter, error) {
	if cfg.MaxInFlight < 1 {
		return nil, fmt.Errorf("admission: max in flight %d: want at least 1", cfg.MaxInFlight)
	}
	if cfg.MinInFlight <= 0 {
		cfg.MinInFlight = max(1, cfg.MaxInFlight/4)
	}
	if cfg.MinInFlight > cfg.MaxInFlight {
		return nil, fmt.Errorf("admission: min in flight %d above the max %d", cfg.MinInFlight, cfg.MaxInFlight)
	}
	if cfg.QueueTimeout < 0 || cfg.LatencyTarget < 0 || cfg.Window < 0 || cfg.MaxQueue < 0 || cfg.MinSamples < 0 {
		return nil, errors.New("admission: negative setting")
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = cfg.MaxInFlight
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MinSamples == 0 {
		cfg.MinSamples = DefaultMinSamples
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Decided == nil {
		cfg.Decided = func(Result) {}
	}
	l := &Limiter{cfg: cfg, limit: float64(cfg.MaxInFlight)}
	l.win.start = cfg.Now()
	return l, nil
}

// Release ends an admitted request. served reports whether its latency
// says something about the backends (false: the client went away, say);
// only served requests feed the adaptive limit. A second call does nothing.
type Release func(served bool)

// Acquire admits the request of ctx or refuses it: an error wrapping
// ErrOverloaded when no slot was free in time, or the context's error when
// it ended while waiting. After a nil error the caller must call release
// exactly once.
func (l *Limiter) Acquire(ctx context.Context) (Release, error) {
	l.mu.Lock()
	if l.waiters.Len() == 0 && l.inFlight < l.limitLocked() {
		l.admitLocked()
		l.mu.Unlock()
		return l.admitted(), nil
	}
	l.win.saturated = true
	if l.cfg.QueueTimeout == 0 || l.waiters.Len() >= l.cfg.MaxQueue {
		waiting := l.waiters.Len()
		l.mu.Unlock()
		l.cfg.Decided(RefusedFull)
		return nil, fmt.Errorf("admission: %w: %d requests in flight, %d waiting", ErrOverloaded, l.inFlightNow(), waiting)
	}
	w := &waiter{ready: make(chan struct{})}
	elem := l.waiters.PushBack(w)
	l.mu.Unlock()

	timer := time.NewTimer(l.cfg.QueueTimeout)
	defer timer.Stop()
	var refusal Result
	select {
	case <-w.ready:
		return l.admitted(), nil
	case <-timer.C:
		refusal = RefusedTimeout
	case <-ctx.Done():
		refusal = Canceled
	}

	l.mu.Lock()
	if w.granted {
		// Granted while giving up: a request whose client is gone gives
		// the slot back; one that merely timed out takes it.
		l.mu.Unlock()
		if refusal == Canceled {
			l.release(time.Time{}, false)
			l.cfg.Decided(Canceled)
			return nil, fmt.Errorf("admission: %w", ctx.Err())
		}
		return l.admitted(), nil
	}
	l.waiters.Remove(elem)
	l.mu.Unlock()
	l.cfg.Decided(refusal)
	if refusal == Canceled {
		return nil, fmt.Errorf("admission: %w", ctx.Err())
	}
	return nil, fmt.Errorf("admission: %w: no slot within %s", ErrOverloaded, l.cfg.QueueTimeout)
}

// Stats returns the current limit, requests in flight and waiting.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Limit: l.limitLocked(), InFlight: l.inFlight, Waiting: l.waiters.Len()}
}

func (l *Limiter) inFlightNow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight
}

// limitLocked is the limit in whole requests.
func (l *Limiter) limitLocked() int { return int(math.Floor(l.limit)) }

// admitLocked takes a slot.
func (l *Limiter) admitLocked() {
	l.inFlight++
	if l.inFlight >= l.limitLocked() {
		l.win.saturated = true
	}
}

// admitted reports the admission and returns its release.
func (l *Limiter) admitted() Release {
	l.cfg.Decided(Admitted)
	start := l.cfg.Now()
	var done atomic.Bool
	return func(served bool) {
		if done.Swap(true) {
			return
		}
		l.release(start, served)
	}
}

// release gives a slot back, takes the request's latency into account
// (served with a start) and hands free slots to the oldest waiters.
func (l *Limiter) release(start time.Time, served bool) {
	var now time.Time
	adaptive := served && !start.IsZero() && l.cfg.LatencyTarget > 0
	if adaptive {
		now = l.cfg.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if adaptive {
		l.sampleLocked(now, now.Sub(start))
	}
	for l.waiters.Len() > 0 && l.inFlight < l.limitLocked() {
		w := l.waiters.Remove(l.waiters.Front()).(*waiter)
		w.granted = true
		l.admitLocked()
		close(w.ready)
	}
}

// sampleLocked adds one latency to the window and adjusts the limit when
// the window is complete.
func (l *Limiter) sampleLocked(now time.Time, latency time.Duration) {
	l.win.samples++
	if latency > l.cfg.LatencyTarget {
		l.win.slow++
	}
	if now.Sub(l.win.start) < l.cfg.Window || l.win.samples < l.cfg.MinSamples {
		return
	}
	lo, hi := float64(l.cfg.MinInFlight), float64(l.cfg.MaxInFlight)
	switch {
	case l.win.slow*10 > l.win.samples:
		// More than a tenth of the requests are slower than the target:
		// the backends queue. Admit fewer.
		l.limit = max(lo, l.limit*0.9)
	case l.win.saturated:
		// Fast enough while the limit was what held requests back.
		l.limit = min(hi, l.limit+max(1, l.limit/16))
	}
	l.win = window{start: now}
}
