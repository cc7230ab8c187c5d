package bcrypt

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/merchshop/merchshop/services/user/internal/app"
)

// deadline bounds every wait of these tests; none should come near it.
const deadline = 10 * time.Second

func newHasher(t *testing.T, cfg Config) *Hasher {
	t.Helper()
	if cfg.Cost == 0 {
		cfg.Cost = 4
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// hold occupies a worker until the returned release is called.
func hold(t *testing.T, h *Hasher) (release func()) {
	t.Helper()
	entered, done := make(chan struct{}), make(chan struct{})
	go func() {
		if err := h.run(context.Background(), func() { close(entered); <-done }); err != nil {
			t.Errorf("hold: %v", err)
			close(entered)
		}
	}()
	select {
	case <-entered:
	case <-time.After(deadline):
		t.Fatal("the worker was never taken")
	}
	return func() { close(done) }
}

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

func TestHashAndMatch(t *testing.T) {
	h := newHasher(t, Config{})
	ctx := context.Background()
	hash, err := h.Hash(ctx, "secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		hash, pw string
		want     bool
	}{{hash, "secret", true}, {hash, "Secret", false}, {"not a hash", "secret", false}} {
		got, err := h.Matches(ctx, c.hash, c.pw)
		if err != nil || got != c.want {
			t.Errorf("Matches(%q, %q) = %v, %v; want %v", c.hash, c.pw, got, err, c.want)
		}
	}
	if _, err := New(Config{Cost: 3}); err == nil {
		t.Error("cost 3 accepted")
	}
}

func TestDefaults(t *testing.T) {
	h := newHasher(t, Config{})
	procs := runtime.GOMAXPROCS(0)
	if cap(h.slots) != procs || h.maxWaiting != int64(DefaultWaitingPerWorker*procs) || h.maxWait != DefaultMaxWait {
		t.Fatalf("workers %d, waiting %d, wait %s", cap(h.slots), h.maxWaiting, h.maxWait)
	}
	if h := newHasher(t, Config{Workers: 3, MaxWaiting: -1}); cap(h.slots) != 3 || h.maxWaiting != 0 {
		t.Fatalf("workers %d, waiting %d", cap(h.slots), h.maxWaiting)
	}
}

// At most Workers run at once and MaxWaiting wait; a call beyond them is
// refused at once with ErrBusy, and a waiter runs when a worker frees.
func TestPoolBound(t *testing.T) {
	h := newHasher(t, Config{Workers: 1, MaxWaiting: 1, MaxWait: deadline})
	release := hold(t, h)
	waited := make(chan error, 1)
	go func() {
		_, err := h.Matches(context.Background(), "not a hash", "pw")
		waited <- err
	}()
	eventually(t, "a call waiting", func() bool { return h.waiting.Load() == 1 })

	start := time.Now()
	_, err := h.Hash(context.Background(), "pw")
	if !errors.Is(err, app.ErrBusy) {
		t.Fatalf("third call: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("refused after %s, want at once", took)
	}
	release()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("the waiter never ran")
	}
	if len(h.slots) != 0 || h.waiting.Load() != 0 {
		t.Fatalf("left behind: %d running, %d waiting", len(h.slots), h.waiting.Load())
	}
}

// A call whose wait would be longer than MaxWait (the calls ahead times
// the average duration, over the workers) is refused at once.
func TestExpectedWaitRefusesAtOnce(t *testing.T) {
	h := newHasher(t, Config{Workers: 1, MaxWait: deadline / 2})
	release := hold(t, h)
	h.avg.Store(int64(deadline / 3)) // a call takes a third of a deadline
	waited := make(chan error, 1)
	go func() {
		_, err := h.Matches(context.Background(), "not a hash", "pw")
		waited <- err
	}()
	// The first waiter expects a third of a deadline: it waits.
	eventually(t, "a call waiting", func() bool { return h.waiting.Load() == 1 })
	// The second would wait two thirds, more than MaxWait: refused at once.
	start := time.Now()
	if _, err := h.Hash(context.Background(), "pw"); !errors.Is(err, app.ErrBusy) {
		t.Fatalf("second waiter: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("refused after %s, want at once", took)
	}
	release()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("first waiter: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("the first waiter never ran")
	}
	// The average moved toward the real (fast) calls.
	if avg := time.Duration(h.avg.Load()); avg >= deadline/3 {
		t.Fatalf("average %s after a fast call, want below %s", avg, deadline/3)
	}
}

// A wait ends at MaxWait with ErrBusy, or earlier at the context's end with
// the context's error.
func TestWaitIsBounded(t *testing.T) {
	const wait = 20 * time.Millisecond
	h := newHasher(t, Config{Workers: 1, MaxWait: wait})
	release := hold(t, h)
	defer release()

	start := time.Now()
	_, err := h.Matches(context.Background(), "not a hash", "pw")
	if !errors.Is(err, app.ErrBusy) {
		t.Fatalf("after the max wait: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took < wait {
		t.Fatalf("refused after %s, before the max wait %s", took, wait)
	}

	h.maxWait = deadline
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err = h.Hash(ctx, "pw")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, app.ErrBusy) {
		t.Fatalf("at the context's deadline: %v, want context.DeadlineExceeded", err)
	}
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := h.Hash(canceled, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: %v", err)
	}
	if h.waiting.Load() != 0 {
		t.Fatalf("%d left waiting", h.waiting.Load())
	}
}
