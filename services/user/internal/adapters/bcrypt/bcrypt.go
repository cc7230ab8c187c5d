// Package bcrypt hashes and checks passwords with bcrypt in a bounded pool.
//
// A hash or a comparison at cost 10 takes ~60 ms of a core, so a burst of
// first logins would otherwise queue on the CPU without bound: every login
// would take seconds and then time out. The pool runs at most Workers of
// them at once (default: one per core the Go runtime runs on,
// runtime.GOMAXPROCS: runtime.NumCPU() on a machine, the CPU limit in a
// container, where NumCPU would count the node's cores) and lets at most
// MaxWaiting more wait, each for at most MaxWait or until its context ends.
// A call fails with an error wrapping app.ErrBusy (the gRPC API answers
// ResourceExhausted, the gateway 503 with Retry-After) when the waiting room
// is full, when its wait runs out, and at once when its wait would be longer
// than MaxWait anyway: the calls ahead of it times the average duration of
// a call, over the workers. So an overload costs the excess logins a fast
// refusal instead of costing every login its deadline, while cheap hashes
// (a low cost) may queue deeper.
package bcrypt

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/merchshop/merchshop/services/user/internal/app"
)

// Defaults of the pool.
const (
	// DefaultWaitingPerWorker sizes MaxWaiting, a bound of memory (the
	// expected wait bounds the time): at cost 10 ~16 per worker fit in
	// DefaultMaxWait, at cost 4 all of them.
	DefaultWaitingPerWorker = 32
	// DefaultMaxWait: ten first logins of one name at once (ten hashes,
	// then nine comparisons of the losers) fit on one worker at cost 10.
	DefaultMaxWait = time.Second
)

// Config is a Hasher's shape.
type Config struct {
	// Cost is bcrypt's cost (4..31) for new hashes.
	Cost int
	// Workers bounds the hashes and comparisons running at once
	// (default runtime.GOMAXPROCS(0), see the package comment).
	Workers int
	// MaxWaiting bounds the calls waiting for a worker (default
	// DefaultWaitingPerWorker per worker; negative: none wait).
	MaxWaiting int
	// MaxWait bounds a call's wait for a worker (default DefaultMaxWait).
	MaxWait time.Duration
	// Metrics registers the pool's metrics when set.
	Metrics prometheus.Registerer
}

// Hasher is a bcrypt hasher with a fixed cost and a bounded pool.
type Hasher struct {
	cost       int
	slots      chan struct{} // a token per running call; senders queue FIFO
	maxWaiting int64
	maxWait    time.Duration
	waiting    atomic.Int64
	avg        atomic.Int64 // moving average of a call's duration, ns (0: none yet)
	calls      *prometheus.CounterVec
}

// New returns a hasher; the cost must be within bcrypt's bounds (4..31).
func New(cfg Config) (*Hasher, error) {
	if cfg.Cost < bcrypt.MinCost || cfg.Cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d out of range %d..%d", cfg.Cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case cfg.MaxWaiting == 0:
		cfg.MaxWaiting = DefaultWaitingPerWorker * cfg.Workers
	case cfg.MaxWaiting < 0:
		cfg.MaxWaiting = 0
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	h := &Hasher{
		cost: cfg.Cost, slots: make(chan struct{}, cfg.Workers),
		maxWaiting: int64(cfg.MaxWaiting), maxWait: cfg.MaxWait,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "user_bcrypt_total",
			Help: "bcrypt hashes and comparisons by result: done, busy (refused: the pool's waiting room was full or the wait too long), canceled.",
		}, []string{"result"}),
	}
	for _, r := range []string{"done", "busy", "canceled"} {
		h.calls.WithLabelValues(r)
	}
	if cfg.Metrics != nil {
		if err := errors.Join(
			cfg.Metrics.Register(h.calls),
			cfg.Metrics.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "user_bcrypt_running", Help: "bcrypt hashes and comparisons running.",
			}, func() float64 { return float64(len(h.slots)) })),
			cfg.Metrics.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "user_bcrypt_waiting", Help: "bcrypt hashes and comparisons waiting for a worker.",
			}, func() float64 { return float64(h.waiting.Load()) })),
		); err != nil {
			return nil, fmt.Errorf("bcrypt metrics: %w", err)
		}
	}
	return h, nil
}

// Hash hashes password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	var b []byte
	var err error
	if perr := h.run(ctx, func() { b, err = bcrypt.GenerateFromPassword([]byte(password), h.cost) }); perr != nil {
		return "", perr
	}
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	return string(b), nil
}

// Matches reports whether password is the one hash was made from. A
// malformed hash matches nothing. The error is the pool's (busy, or the
// context ended while waiting).
func (h *Hasher) Matches(ctx context.Context, hash, password string) (bool, error) {
	var ok bool
	if err := h.run(ctx, func() { ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil }); err != nil {
		return false, err
	}
	return ok, nil
}

// run runs f on a worker, waiting for one within the pool's bounds.
func (h *Hasher) run(ctx context.Context, f func()) error {
	if err := h.acquire(ctx); err != nil {
		return err
	}
	defer func() { <-h.slots }()
	start := time.Now()
	f()
	h.observe(time.Since(start))
	h.calls.WithLabelValues("done").Inc()
	return nil
}

// observe folds a call's duration into the moving average (weight 1/8).
// Concurrent updates may lose one; the average stays an estimate.
func (h *Hasher) observe(d time.Duration) {
	old := h.avg.Load()
	if old == 0 {
		h.avg.Store(int64(d))
		return
	}
	h.avg.Store(old + (int64(d)-old)/8)
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if err := ctx.Err(); err != nil {
		h.calls.WithLabelValues("canceled").Inc()
		return fmt.Errorf("bcrypt: %w", err)
	}
	n := h.waiting.Add(1)
	if n > h.maxWaiting {
		h.waiting.Add(-1)
		h.calls.WithLabelValues("busy").Inc()
		return fmt.Errorf("bcrypt: %w: %d calls waiting", app.ErrBusy, n-1)
	}
	// n calls (this one too) wait for cap(slots) workers.
	if est := time.Duration(n * h.avg.Load() / int64(cap(h.slots))); est > h.maxWait {
		h.waiting.Add(-1)
		h.calls.WithLabelValues("busy").Inc()
		return fmt.Errorf("bcrypt: %w: the wait would be ~%s", app.ErrBusy, est.Round(time.Millisecond))
	}
	defer h.waiting.Add(-1)
	timer := time.NewTimer(h.maxWait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-timer.C:
		h.calls.WithLabelValues("busy").Inc()
		return fmt.Errorf("bcrypt: %w: no worker within %s", app.ErrBusy, h.maxWait)
	case <-ctx.Done():
		h.calls.WithLabelValues("canceled").Inc()
		return fmt.Errorf("bcrypt: %w", ctx.Err())
	}
}
