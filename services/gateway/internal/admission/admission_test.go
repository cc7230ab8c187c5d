package admission_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/merchshop/merchshop/services/gateway/internal/admission"
)

// deadline bounds every wait of these tests; none should come near it.
const deadline = 10 * time.Second

func newLimiter(t *testing.T, cfg admission.Config) *admission.Limiter {
	t.Helper()
	l, err := admission.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// eventually waits until cond holds, failing the test after the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not ordering events
	}
}

func acquire(t *testing.T, l *admission.Limiter) admission.Release {
	t.Helper()
	rel, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return rel
}

// decisions counts a limiter's decisions.
type decisions struct {
	mu sync.Mutex
	n  map[admission.Result]int
}

func (d *decisions) add(r admission.Result) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[admission.Result]int{}
	}
	d.n[r]++
}

func (d *decisions) get(r admission.Result) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[r]
}

func TestConfig(t *testing.T) {
	for _, cfg := range []admission.Config{
		{},
		{MaxInFlight: -1},
		{MaxInFlight: 4, MinInFlight: 5},
		{MaxInFlight: 4, QueueTimeout: -time.Second},
		{MaxInFlight: 4, MaxQueue: -1},
	} {
		if _, err := admission.New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	l := newLimiter(t, admission.Config{MaxInFlight: 8})
	if s := l.Stats(); s.Limit != 8 || s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLimitRespected(t *testing.T) {
	var d decisions
	l := newLimiter(t, admission.Config{MaxInFlight: 3, Decided: d.add})
	var rels []admission.Release
	for range 3 {
		rels = append(rels, acquire(t, l))
	}
	if _, err := l.Acquire(context.Background()); !errors.Is(err, admission.ErrOverloaded) {
		t.Fatalf("fourth request: %v, want ErrOverloaded", err)
	}
	if s := l.Stats(); s.InFlight != 3 {
		t.Fatalf("in flight %d", s.InFlight)
	}
	rels[0](true)
	rels[0](true) // a second release does nothing
	if s := l.Stats(); s.InFlight != 2 {
		t.Fatalf("in flight %d after one release", s.InFlight)
	}
	acquire(t, l)(true)
	if d.get(admission.Admitted) != 4 || d.get(admission.RefusedFull) != 1 {
		t.Fatalf("decisions %v", d.n)
	}
}

// Many goroutines at once: never more than the limit at a time, and every
// one is admitted or refused with ErrOverloaded.
func TestLimitRespectedConcurrently(t *testing.T) {
	const limit, workers, rounds = 4, 32, 50
	l := newLimiter(t, admission.Config{MaxInFlight: limit, QueueTimeout: time.Second, MaxQueue: workers})
	var cur, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				rel, err := l.Acquire(context.Background())
				if err != nil {
					if !errors.Is(err, admission.ErrOverloaded) {
						t.Errorf("acquire: %v", err)
					}
					continue
				}
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				admitted.Add(1)
				cur.Add(-1)
				rel(true)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Fatalf("%d in flight at once, limit %d", p, limit)
	}
	if admitted.Load() == 0 {
		t.Fatal("nothing admitted")
	}
	if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("left behind: %+v", s)
	}
}

// A full queue refuses at once; a wait ends at the queue timeout.
func TestRefusalIsFast(t *testing.T) {
	t.Run("queue full", func(t *testing.T) {
		var d decisions
		// A request that waited would wait the whole deadline: a refusal
		// well before it did not wait.
		l := newLimiter(t, admission.Config{MaxInFlight: 1, MaxQueue: 1, QueueTimeout: deadline, Decided: d.add})
		held := acquire(t, l)
		defer held(true)
		ctx, cancel := context.WithCancel(context.Background())
		waiter := make(chan error, 1)
		go func() {
			_, err := l.Acquire(ctx)
			waiter <- err
		}()
		eventually(t, "a request waiting", func() bool { return l.Stats().Waiting == 1 })
		start := time.Now()
		_, err := l.Acquire(context.Background())
		if took := time.Since(start); !errors.Is(err, admission.ErrOverloaded) || took > deadline/10 {
			t.Fatalf("queue full: %v after %s, want ErrOverloaded at once", err, took)
		}
		cancel()
		if err := <-waiter; !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter: %v", err)
		}
		if d.get(admission.RefusedFull) != 1 || d.get(admission.Canceled) != 1 {
			t.Fatalf("decisions %v", d.n)
		}
	})
	t.Run("queue timeout", func(t *testing.T) {
		var d decisions
		const wait = 20 * time.Millisecond
		l := newLimiter(t, admission.Config{MaxInFlight: 1, QueueTimeout: wait, Decided: d.add})
		held := acquire(t, l)
		defer held(true)
		start := time.Now()
		_, err := l.Acquire(context.Background())
		took := time.Since(start)
		if !errors.Is(err, admission.ErrOverloaded) {
			t.Fatalf("after the queue timeout: %v, want ErrOverloaded", err)
		}
		if took < wait || took > wait+time.Second {
			t.Fatalf("refused after %s, want the queue timeout %s", took, wait)
		}
		if s := l.Stats(); s.Waiting != 0 || s.InFlight != 1 {
			t.Fatalf("stats %+v", s)
		}
		if d.get(admission.RefusedTimeout) != 1 {
			t.Fatalf("decisions %v", d.n)
		}
	})
}

// A waiter gets the slot a release frees, oldest first.
func TestQueueHandsSlotsOverInOrder(t *testing.T) {
	l := newLimiter(t, admission.Config{MaxInFlight: 1, MaxQueue: 2, QueueTimeout: deadline})
	held := acquire(t, l)
	order := make(chan int, 2)
	rels := make(chan admission.Release, 2)
	for i := range 2 {
		go func() {
			rel, err := l.Acquire(context.Background())
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			order <- i
			rels <- rel
		}()
		eventually(t, "the waiter queued", func() bool { return l.Stats().Waiting == i+1 })
	}
	held(true)
	first := <-order
	if s := l.Stats(); s.InFlight != 1 || s.Waiting != 1 {
		t.Fatalf("after one release: %+v", s)
	}
	(<-rels)(true)
	second := <-order
	(<-rels)(true)
	if first != 0 || second != 1 {
		t.Fatalf("admitted %d then %d, want 0 then 1", first, second)
	}
	if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("left behind: %+v", s)
	}
}

// A waiter whose context ends leaves the queue, and takes no slot; when the
// cancel races with a grant the slot goes back.
func TestContextCancelReleasesTheSlot(t *testing.T) {
	var d decisions
	l := newLimiter(t, admission.Config{MaxInFlight: 1, QueueTimeout: deadline, Decided: d.add})
	held := acquire(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		_, err := l.Acquire(ctx)
		errs <- err
	}()
	eventually(t, "the waiter queued", func() bool { return l.Stats().Waiting == 1 })
	cancel()
	select {
	case err := <-errs:
		if !errors.Is(err, context.Canceled) || errors.Is(err, admission.ErrOverloaded) {
			t.Fatalf("canceled waiter: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("a canceled waiter kept waiting")
	}
	if s := l.Stats(); s.Waiting != 0 || s.InFlight != 1 {
		t.Fatalf("stats %+v", s)
	}
	held(true)
	acquire(t, l)(true)
	if d.get(admission.Canceled) != 1 {
		t.Fatalf("decisions %v", d.n)
	}

	// The race: the slot is released while the waiter is canceled.
	for range 200 {
		held := acquire(t, l)
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan admission.Release, 1)
		go func() {
			rel, _ := l.Acquire(ctx)
			got <- rel
		}()
		eventually(t, "the waiter queued", func() bool { return l.Stats().Waiting == 1 })
		go cancel()
		held(true)
		if rel := <-got; rel != nil {
			rel(false)
		}
		if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
			t.Fatalf("after a canceled waiter: %+v", s)
		}
	}
}

// Timeouts and cancels leave no goroutine behind (the limiter starts none).
func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t)
	l := newLimiter(t, admission.Config{MaxInFlight: 2, MaxQueue: 8, QueueTimeout: 5 * time.Millisecond})
	held := []admission.Release{acquire(t, l), acquire(t, l)}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			if i%2 == 0 {
				cancel()
			}
			defer cancel()
			if rel, err := l.Acquire(ctx); err == nil {
				rel(true)
			}
		})
	}
	wg.Wait()
	for _, rel := range held {
		rel(true)
	}
	if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("left behind: %+v", s)
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestAdaptiveLimit(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(t, admission.Config{
		MaxInFlight: 100, MinInFlight: 10, LatencyTarget: 10 * time.Millisecond,
		Window: time.Second, MinSamples: 5, Now: clk.Now,
	})
	// window runs one window of n requests one after the other, each
	// taking latency (n*latency shorter than the window), then a fast one
	// after the window's end that closes it; served tells whether they
	// count.
	window := func(n int, latency time.Duration, served bool) {
		t.Helper()
		for range n {
			rel := acquire(t, l)
			clk.advance(latency)
			rel(served)
		}
		clk.advance(time.Second)
		acquire(t, l)(served)
	}

	window(10, 50*time.Millisecond, true)
	if got := l.Stats().Limit; got != 90 {
		t.Fatalf("limit %d after a slow window, want 90", got)
	}
	window(10, 50*time.Millisecond, false)
	if got := l.Stats().Limit; got != 90 {
		t.Fatalf("limit %d after a window of requests that were not served, want 90", got)
	}
	for range 50 {
		window(10, 50*time.Millisecond, true)
	}
	if got := l.Stats().Limit; got != 10 {
		t.Fatalf("limit %d after slow windows, want the floor 10", got)
	}
	// Fast, but the limit never reached: it stays.
	window(10, time.Millisecond, true)
	if got := l.Stats().Limit; got != 10 {
		t.Fatalf("limit %d after an idle fast window, want 10", got)
	}
	// Fast with the limit reached: it grows, up to the ceiling.
	saturated := func() {
		rels := make([]admission.Release, 0, 100)
		for {
			rel, err := l.Acquire(context.Background())
			if err != nil {
				break
			}
			rels = append(rels, rel)
		}
		clk.advance(time.Millisecond)
		for _, rel := range rels {
			rel(true)
		}
		clk.advance(time.Second)
		acquire(t, l)(true)
	}
	saturated()
	if got := l.Stats().Limit; got != 11 {
		t.Fatalf("limit %d after a fast saturated window, want 11", got)
	}
	for range 100 {
		saturated()
	}
	if got := l.Stats().Limit; got != 100 {
		t.Fatalf("limit %d after fast saturated windows, want the ceiling 100", got)
	}
}
