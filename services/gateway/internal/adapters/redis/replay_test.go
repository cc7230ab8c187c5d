package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/testenv"
)

func TestReplayCacheOnRedis(t *testing.T) {
	rdb := NewClient(testenv.Need(t, "REDIS_ADDR"))
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	c := New(rdb, Config{TTL: time.Minute})
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	key := "idem:test:" + uuid.NewString()
	t.Cleanup(func() { rdb.Del(context.Background(), key) })

	if _, _, found, err := c.Get(ctx, key); err != nil || found {
		t.Fatalf("empty: found=%v err=%v", found, err)
	}
	if err := c.Put(ctx, key, 400, []byte(`{"errors":"insufficient funds"}`)); err != nil {
		t.Fatal(err)
	}
	// The first answer wins.
	if err := c.Put(ctx, key, 200, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	status, body, found, err := c.Get(ctx, key)
	if err != nil || !found || status != 400 || string(body) != `{"errors":"insufficient funds"}` {
		t.Fatalf("got %d %s found=%v err=%v", status, body, found, err)
	}
	ttl, err := rdb.TTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL %v %v", ttl, err)
	}

	// Something else under the key reads as absent.
	if err := rdb.Set(ctx, key, "not json", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, found, err := c.Get(ctx, key); err != nil || found {
		t.Fatalf("corrupt entry: found=%v err=%v", found, err)
	}
}

func TestReplayCacheSkipsAfterFailure(t *testing.T) {
	rdb := NewClient("127.0.0.1:1")
	t.Cleanup(func() { _ = rdb.Close() })
	c := New(rdb, Config{Pause: time.Hour})
	if _, _, _, err := c.Get(context.Background(), "k"); err == nil {
		t.Fatal("no error without Redis")
	}
	start := time.Now()
	for range 100 {
		if _, _, _, err := c.Get(context.Background(), "k"); !errors.Is(err, ErrSkipped) {
			t.Fatalf("not skipped: %v", err)
		}
		if err := c.Put(context.Background(), "k", 200, nil); !errors.Is(err, ErrSkipped) {
			t.Fatalf("put not skipped: %v", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("skipping took %v", d)
	}
}
