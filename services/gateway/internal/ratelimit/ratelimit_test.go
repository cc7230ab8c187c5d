package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseRule(t *testing.T) {
	for _, c := range []struct {
		in    string
		burst int
		want  Rule
		bad   bool
	}{
		{in: "10/1m", want: Rule{Rate: 10.0 / 60, Burst: 10}},
		{in: "10/m", burst: 3, want: Rule{Rate: 10.0 / 60, Burst: 3}},
		{in: "100/1s", want: Rule{Rate: 100, Burst: 100}},
		{in: " 5 / 10s ", want: Rule{Rate: 0.5, Burst: 5}},
		{in: "off"}, {in: ""}, {in: "0"}, {in: "0/1m"},
		{in: "10", bad: true}, {in: "x/1m", bad: true}, {in: "-1/1m", bad: true},
		{in: "10/0s", bad: true}, {in: "10/-1m", bad: true}, {in: "10/fortnight", bad: true},
	} {
		got, err := ParseRule(c.in, c.burst)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("ParseRule(%q, %d) = %+v, %v; want %+v, bad=%v", c.in, c.burst, got, err, c.want, c.bad)
		}
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newMem(max int) (*Memory, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m := NewMemory(max)
	m.now = c.now
	return m, c
}

var ctx = context.Background()

func TestMemoryBucket(t *testing.T) {
	m, c := newMem(10)
	r := Rule{Rate: 1, Burst: 3} // one a second
	b := []Bucket{{Key: "a", Rule: r}}
	for i := range 3 {
		if d, _ := m.Take(ctx, b); !d.Allowed {
			t.Fatalf("take %d refused", i)
		}
	}
	d, _ := m.Take(ctx, b)
	if d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("empty bucket: %+v, want refused with 1s", d)
	}
	c.add(500 * time.Millisecond)
	if d, _ := m.Take(ctx, b); d.Allowed || d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("half a token: %+v", d)
	}
	c.add(500 * time.Millisecond)
	if d, _ := m.Take(ctx, b); !d.Allowed {
		t.Fatalf("refilled token refused: %+v", d)
	}
	// A refund gives the token back at once.
	_ = m.Refund(ctx, b)
	if d, _ := m.Take(ctx, b); !d.Allowed {
		t.Fatalf("refunded token refused: %+v", d)
	}
	// A full bucket is dropped: absent and full are the same.
	c.add(time.Hour)
	_, _ = m.Take(ctx, b)
	_ = m.Refund(ctx, b)
	if n := m.Len(); n != 0 {
		t.Fatalf("%d buckets held, want 0 after a full refill", n)
	}
}

func TestMemoryAllOrNothing(t *testing.T) {
	m, _ := newMem(10)
	user := Bucket{Key: "user", Rule: Rule{Rate: 1, Burst: 1}}
	addr := Bucket{Key: "addr", Rule: Rule{Rate: 1, Burst: 5}}
	if d, _ := m.Take(ctx, []Bucket{user, addr}); !d.Allowed {
		t.Fatal("first take refused")
	}
	d, _ := m.Take(ctx, []Bucket{user, addr})
	if d.Allowed || d.Limited != 0 {
		t.Fatalf("empty user bucket: %+v, want refused by bucket 0", d)
	}
	// The refusal took nothing from the address bucket: 4 are left.
	for i := range 4 {
		if d, _ := m.Take(ctx, []Bucket{addr}); !d.Allowed {
			t.Fatalf("addr take %d refused", i)
		}
	}
	if d, _ := m.Take(ctx, []Bucket{addr}); d.Allowed {
		t.Fatal("addr bucket over its burst")
	}
}

func TestMemoryFullFailsClosed(t *testing.T) {
	m, c := newMem(2)
	r := Rule{Rate: 1, Burst: 2}
	for _, k := range []string{"a", "b"} {
		if d, _ := m.Take(ctx, []Bucket{{Key: k, Rule: r}}); !d.Allowed {
			t.Fatalf("take %s refused", k)
		}
	}
	d, _ := m.Take(ctx, []Bucket{{Key: "c", Rule: r}})
	if d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("new key in a full store: %+v, want refused", d)
	}
	// Known keys still work.
	if d, _ := m.Take(ctx, []Bucket{{Key: "a", Rule: r}}); !d.Allowed {
		t.Fatal("known key refused in a full store")
	}
	// Once buckets have refilled, they make room.
	c.add(5 * time.Second)
	if d, _ := m.Take(ctx, []Bucket{{Key: "c", Rule: r}}); !d.Allowed {
		t.Fatalf("new key after refill: %+v", d)
	}
}

// flaky is a shared store that fails while down is set.
type flaky struct {
	down    atomic.Bool
	inner   *Memory
	takes   atomic.Int64
	refunds atomic.Int64
}

func (f *flaky) Take(ctx context.Context, b []Bucket) (Decision, error) {
	f.takes.Add(1)
	if f.down.Load() {
		return Decision{}, errors.New("down")
	}
	return f.inner.Take(ctx, b)
}

func (f *flaky) Refund(ctx context.Context, b []Bucket) error {
	f.refunds.Add(1)
	if f.down.Load() {
		return errors.New("down")
	}
	return f.inner.Refund(ctx, b)
}

func TestLoginCountsFailuresOnly(t *testing.T) {
	var results sync.Map
	l := NewLogin(Config{
		PerUser: Rule{Rate: 1.0 / 60, Burst: 3},
		PerAddr: Rule{Rate: 1.0 / 60, Burst: 100},
		Obs: Observer{Decided: func(r string) {
			n, _ := results.LoadOrStore(r, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}},
	})
	// Successful logins never use up the limit.
	for i := range 20 {
		done, _, ok := l.Reserve(ctx, "alice", "10.0.0.1")
		if !ok {
			t.Fatalf("successful login %d refused", i)
		}
		done(false)
	}
	// Three failures use it up; then even the right password waits.
	for i := range 3 {
		done, _, ok := l.Reserve(ctx, "alice", "10.0.0.1")
		if !ok {
			t.Fatalf("failed attempt %d refused", i)
		}
		done(true)
	}
	_, retry, ok := l.Reserve(ctx, "alice", "10.0.0.2")
	if ok || retry <= 0 || retry > time.Minute {
		t.Fatalf("4th failure for alice: ok=%v retry=%v, want refused within a minute", ok, retry)
	}
	// Other users are not affected.
	if _, _, ok := l.Reserve(ctx, "bob", "10.0.0.1"); !ok {
		t.Fatal("bob refused")
	}
	n, _ := results.Load("limited_user")
	if n == nil || n.(*atomic.Int64).Load() != 1 {
		t.Fatalf("limited_user not counted once: %v", n)
	}
}

func TestLoginBoundsAttemptsInFlight(t *testing.T) {
	// Concurrent guesses cannot outrun the limit: each holds its token
	// until its outcome is known.
	l := NewLogin(Config{PerUser: Rule{Rate: 1.0 / 60, Burst: 5}})
	var dones []func(bool)
	for range 5 {
		done, _, ok := l.Reserve(ctx, "alice", "")
		if !ok {
			t.Fatal("refused within the burst")
		}
		dones = append(dones, done)
	}
	if _, _, ok := l.Reserve(ctx, "alice", ""); ok {
		t.Fatal("a 6th attempt in flight was allowed")
	}
	for _, d := range dones {
		d(false)
	}
	if _, _, ok := l.Reserve(ctx, "alice", ""); !ok {
		t.Fatal("refused after the attempts in flight succeeded")
	}
}

func TestLoginFallsBackToMemory(t *testing.T) {
	shared := &flaky{inner: NewMemory(100)}
	var fallbacks atomic.Int64
	l := NewLogin(Config{
		PerUser: Rule{Rate: 1.0 / 60, Burst: 2},
		Shared:  shared,
		Pause:   time.Hour,
		Obs:     Observer{Fallback: func() { fallbacks.Add(1) }},
	})
	shared.down.Store(true)
	// The limit still holds while the shared store is down.
	for range 2 {
		done, _, ok := l.Reserve(ctx, "alice", "")
		if !ok {
			t.Fatal("refused within the burst")
		}
		done(true)
	}
	if _, _, ok := l.Reserve(ctx, "alice", ""); ok {
		t.Fatal("failed open while the shared store is down")
	}
	if n := shared.takes.Load(); n != 1 {
		t.Fatalf("shared store asked %d times during the pause, want 1", n)
	}
	if n := fallbacks.Load(); n != 3 {
		t.Fatalf("%d fallback decisions, want 3", n)
	}
}

func TestLoginWithoutKeys(t *testing.T) {
	l := NewLogin(Config{PerUser: Rule{Rate: 1, Burst: 1}})
	// No username and the address limit off: nothing to count.
	for range 5 {
		done, _, ok := l.Reserve(ctx, "", "10.0.0.1")
		if !ok {
			t.Fatal("refused with no bucket")
		}
		done(true)
	}
}
