package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/testenv"
	"github.com/merchshop/merchshop/services/gateway/internal/ratelimit"
)

func rateStore(t *testing.T) (*RateStore, func(keys ...string)) {
	t.Helper()
	rdb := NewClient(testenv.Need(t, "REDIS_ADDR"))
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	cleanup := func(keys ...string) {
		t.Cleanup(func() { rdb.Del(context.Background(), keys...) })
	}
	return NewRateStore(rdb), cleanup
}

func TestRateStoreBuckets(t *testing.T) {
	s, cleanup := rateStore(t)
	ctx := context.Background()
	id := uuid.NewString()
	user := ratelimit.Bucket{Key: "rl:test:user:" + id, Rule: ratelimit.Rule{Rate: 1.0 / 60, Burst: 2}}
	addr := ratelimit.Bucket{Key: "rl:test:addr:" + id, Rule: ratelimit.Rule{Rate: 1.0 / 60, Burst: 3}}
	cleanup(user.Key, addr.Key)

	for i := range 2 {
		d, err := s.Take(ctx, []ratelimit.Bucket{user, addr})
		if err != nil || !d.Allowed {
			t.Fatalf("take %d: %+v %v", i, d, err)
		}
	}
	d, err := s.Take(ctx, []ratelimit.Bucket{user, addr})
	if err != nil || d.Allowed || d.Limited != 0 {
		t.Fatalf("empty user bucket: %+v %v, want refused by bucket 0", d, err)
	}
	// About 60 s for a token at 1/min (a little less: time passed).
	if d.RetryAfter < 55*time.Second || d.RetryAfter > 60*time.Second {
		t.Fatalf("retry after %v, want about 1m", d.RetryAfter)
	}
	// The refusal took nothing from the address bucket: one is left.
	if d, err := s.Take(ctx, []ratelimit.Bucket{addr}); err != nil || !d.Allowed {
		t.Fatalf("addr take: %+v %v", d, err)
	}
	if d, err := s.Take(ctx, []ratelimit.Bucket{addr}); err != nil || d.Allowed || d.Limited != 0 {
		t.Fatalf("addr over its burst: %+v %v", d, err)
	}
	// A refund gives a token back.
	if err := s.Refund(ctx, []ratelimit.Bucket{user}); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Take(ctx, []ratelimit.Bucket{user}); err != nil || !d.Allowed {
		t.Fatalf("after refund: %+v %v", d, err)
	}
	// Buckets expire once they would have refilled.
	ttl, err := s.rdb.PTTL(ctx, user.Key).Result()
	if err != nil || ttl <= 0 || ttl > 2*time.Minute+time.Second {
		t.Fatalf("ttl %v %v, want about 2m", ttl, err)
	}
}

func TestRateStoreRefundToFullDeletes(t *testing.T) {
	s, cleanup := rateStore(t)
	ctx := context.Background()
	b := ratelimit.Bucket{Key: "rl:test:full:" + uuid.NewString(), Rule: ratelimit.Rule{Rate: 1, Burst: 5}}
	cleanup(b.Key)
	if d, err := s.Take(ctx, []ratelimit.Bucket{b}); err != nil || !d.Allowed {
		t.Fatalf("take: %+v %v", d, err)
	}
	if err := s.Refund(ctx, []ratelimit.Bucket{b}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.rdb.Exists(ctx, b.Key).Result(); err != nil || n != 0 {
		t.Fatalf("a full bucket is kept (exists=%d, %v)", n, err)
	}
}

func TestRateStoreSharedAndAtomic(t *testing.T) {
	// Two gateway replicas (two clients) racing on one bucket: exactly
	// Burst takes succeed.
	s1, cleanup := rateStore(t)
	s2, _ := rateStore(t)
	b := ratelimit.Bucket{Key: "rl:test:race:" + uuid.NewString(), Rule: ratelimit.Rule{Rate: 1.0 / 3600, Burst: 10}}
	cleanup(b.Key)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			d, err := s.Take(context.Background(), []ratelimit.Bucket{b})
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if n := ok.Load(); n != 10 {
		t.Fatalf("%d takes allowed, want 10", n)
	}
}

func TestRateStoreDown(t *testing.T) {
	rdb := NewClient("127.0.0.1:1")
	t.Cleanup(func() { _ = rdb.Close() })
	s := NewRateStore(rdb)
	b := []ratelimit.Bucket{{Key: "rl:test:down", Rule: ratelimit.Rule{Rate: 1, Burst: 1}}}
	if _, err := s.Take(context.Background(), b); err == nil {
		t.Fatal("no error from a Redis that is not there")
	}
	// The limiter decides in memory meanwhile (never fails open).
	l := ratelimit.NewLogin(ratelimit.Config{PerUser: ratelimit.Rule{Rate: 1.0 / 60, Burst: 1}, Shared: s})
	done, _, ok := l.Reserve(context.Background(), "alice", "")
	if !ok {
		t.Fatal("first attempt refused")
	}
	done(true)
	if _, _, ok := l.Reserve(context.Background(), "alice", ""); ok {
		t.Fatal("the limit failed open while Redis is down")
	}
}
