package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/merchshop/merchshop/pkg/testenv"
	"github.com/merchshop/merchshop/services/gateway/internal/adapters/redis"
	"github.com/merchshop/merchshop/services/gateway/internal/transport/httpapi"
)

func TestIdempotencyKeysReachBackends(t *testing.T) {
	e := newEnv(t, envOption{}) // no replay cache: the backends' keys alone
	e.login("bob")
	alice := bearer(e.login("alice"))
	carol := bearer(e.login("carol"))
	send := `{"toUser":"bob","amount":10}`

	key := "key-" + uuid.NewString()
	for range 3 {
		wantJSON(t, e.do("POST", "/api/sendCoin", send, append(alice, "Idempotency-Key", key)...), 200, `{}`)
	}
	if n := e.w.transfers.Load(); n != 1 {
		t.Fatalf("%d transfers for one key, want 1", n)
	}
	// X-Idempotency-Key is the same key.
	wantJSON(t, e.do("POST", "/api/sendCoin", send, append(alice, "X-Idempotency-Key", key)...), 200, `{}`)
	// The same client key is another operation for another user and route.
	wantJSON(t, e.do("POST", "/api/sendCoin", send, append(carol, "Idempotency-Key", key)...), 200, `{}`)
	r := e.do("POST", "/api/coins/send", `{"to_user":"bob","amount":10}`, append(alice, "Idempotency-Key", key)...)
	if r.status != 200 {
		t.Fatalf("legacy send: %d %s", r.status, r.body)
	}
	if n := e.w.transfers.Load(); n != 3 {
		t.Fatalf("%d transfers, want 3", n)
	}
	// Without a key, every request is its own operation.
	for range 2 {
		wantJSON(t, e.do("POST", "/api/sendCoin", send, alice...), 200, `{}`)
	}
	if n := e.w.transfers.Load(); n != 5 {
		t.Fatalf("%d transfers, want 5", n)
	}

	// GET and POST /api/buy/{item} share keys; a long key works too.
	long := strings.Repeat("k", 200)
	for _, m := range []string{"GET", "POST", "GET"} {
		wantJSON(t, e.do(m, "/api/buy/cup", "", append(alice, "Idempotency-Key", long)...), 200, `{}`)
	}
	if n := e.w.buys.Load(); n != 1 {
		t.Fatalf("%d purchases for one key, want 1", n)
	}
	wantError(t, e.do("GET", "/api/buy/cup", "", append(alice, "Idempotency-Key", long+"k")...), 400,
		"idempotency key must be at most 200 characters")
}

// replayEnv is an env with the Redis replay cache on the real Redis.
func replayEnv(t *testing.T) (*env, *redis.ReplayCache) {
	addr := testenv.Need(t, "REDIS_ADDR")
	rdb := redis.NewClient(addr)
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at %s: %v", addr, err)
	}
	cache := redis.New(rdb, redis.Config{TTL: time.Minute})
	return newEnv(t, envOption{cfg: func(c *httpapi.Config) { c.Replay = cache }}), cache
}

func TestReplayCache(t *testing.T) {
	e, _ := replayEnv(t)
	// Unique names per run: the cache is keyed by user id, which the fakes
	// number from 1 in every run.
	suffix := uuid.NewString()[:8]
	e.w.mu.Lock()
	e.w.nextID = int(time.Now().UnixNano() % 1e9)
	e.w.mu.Unlock()
	e.login("bob")
	alice := bearer(e.login("alice-" + suffix))
	key := []string{"Idempotency-Key", "replay-" + suffix}

	wantJSON(t, e.do("POST", "/api/sendCoin", `{"toUser":"bob","amount":10}`, append(alice, key...)...), 200, `{}`)
	// The backends are down now, yet the retry gets the first answer.
	e.w.setFail(status.Error(codes.Unavailable, "down"))
	r := e.do("POST", "/api/sendCoin", `{"toUser":"bob","amount":10}`, append(alice, key...)...)
	wantJSON(t, r, 200, `{}`)
	if r.resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Error("replay not marked")
	}
	// A transient failure is not stored.
	key2 := []string{"Idempotency-Key", "transient-" + suffix}
	wantError(t, e.do("POST", "/api/sendCoin", `{"toUser":"bob","amount":10}`, append(alice, key2...)...), 503, "service temporarily unavailable")
	e.w.setFail(nil)
	wantJSON(t, e.do("POST", "/api/sendCoin", `{"toUser":"bob","amount":10}`, append(alice, key2...)...), 200, `{}`)
	if n := e.w.transfers.Load(); n != 2 {
		t.Fatalf("%d transfers, want 2", n)
	}

	// A refusal is final and replayed too, even once it would succeed.
	key3 := []string{"X-Idempotency-Key", "refusal-" + suffix}
	wantError(t, e.do("GET", "/api/buy/nothing", "", append(alice, key3...)...), 400, "unknown item")
	wantError(t, e.do("GET", "/api/buy/nothing", "", append(alice, key3...)...), 400, "unknown item")

	// Legacy answers replay with their transaction id.
	key4 := []string{"Idempotency-Key", "legacy-" + suffix}
	first := e.do("POST", "/api/merch/buy/pen", "", append(alice, key4...)...)
	again := e.do("POST", "/api/merch/buy/pen", "", append(alice, key4...)...)
	if first.status != 200 || string(first.body) != string(again.body) {
		t.Fatalf("legacy replay: %d %s vs %d %s", first.status, first.body, again.status, again.body)
	}
	if n := e.w.buys.Load(); n != 1 {
		t.Fatalf("%d purchases, want 1", n)
	}
}

func TestReplayCacheDown(t *testing.T) {
	// A Redis that is not there: requests go on without the cache.
	rdb := redis.NewClient("127.0.0.1:1")
	t.Cleanup(func() { _ = rdb.Close() })
	cache := redis.New(rdb, redis.Config{})
	e := newEnv(t, envOption{cfg: func(c *httpapi.Config) { c.Replay = cache }})
	e.login("bob")
	alice := bearer(e.login("alice"))
	for i := range 3 {
		key := []string{"Idempotency-Key", fmt.Sprint("k", i%2)}
		wantJSON(t, e.do("POST", "/api/sendCoin", `{"toUser":"bob","amount":10}`, append(alice, key...)...), 200, `{}`)
	}
	if n := e.w.transfers.Load(); n != 2 {
		t.Fatalf("%d transfers, want 2 (keys k0, k1)", n)
	}
	if m := string(e.do("GET", "/metrics", "").body); !strings.Contains(m, `gateway_idempotency_cache_total{result="error"}`) {
		t.Error("cache errors not counted")
	}
	if err := cache.Check(context.Background()); err == nil {
		t.Error("readiness check passed without Redis")
	}
}
