// Package redis keeps the gateway's idempotency replay cache and the login
// rate limiter's token buckets in Redis.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrSkipped is returned while the cache is skipped after a failure.
var ErrSkipped = errors.New("replay cache skipped after a recent failure")

// Config tunes a ReplayCache. Zero values take the defaults.
type Config struct {
	// TTL of a stored answer (default 24 h).
	TTL time.Duration
	// Pause is how long the cache is skipped after a failure (default 1 s),
	// so that a Redis outage costs one timeout per Pause, not per request.
	Pause time.Duration
}

// ReplayCache stores final answers under their idempotency keys.
type ReplayCache struct {
	rdb   goredis.UniversalClient
	cfg   Config
	until atomic.Int64 // unix nanos until which the cache is skipped
}

// NewClient returns a client for addr with short timeouts: the cache is an
// optimisation and must never hold a request up for long.
func NewClient(addr string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{
		Addr:         addr,
		DialTimeout:  300 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   1,
		// One dial attempt: the default retries a refused dial 5 times with
		// pauses, close to a second per request while Redis is down.
		DialerRetries:   1,
		PoolSize:        64,
		PoolTimeout:     300 * time.Millisecond,
		DisableIdentity: true,
	})
}

// New returns a cache over rdb.
func New(rdb goredis.UniversalClient, cfg Config) *ReplayCache {
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.Pause <= 0 {
		cfg.Pause = time.Second
	}
	return &ReplayCache{rdb: rdb, cfg: cfg}
}

type stored struct {
	Status int    `json:"s"`
	Body   []byte `json:"b"`
}

func (c *ReplayCache) skipping() bool { return time.Now().UnixNano() < c.until.Load() }

func (c *ReplayCache) failed(err error) error {
	c.until.Store(time.Now().Add(c.cfg.Pause).UnixNano())
	return err
}

// Get returns the answer stored under key.
func (c *ReplayCache) Get(ctx context.Context, key string) (int, []byte, bool, error) {
	if c.skipping() {
		return 0, nil, false, ErrSkipped
	}
	raw, err := c.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, c.failed(fmt.Errorf("redis get: %w", err))
	}
	s, ok := decodeStored(raw)
	if !ok {
		// Not ours or corrupt: treat as absent, the backends decide.
		return 0, nil, false, nil
	}
	return s.Status, s.Body, true, nil
}

// Put stores an answer under key unless one is there already (the first
// answer wins).
func (c *ReplayCache) Put(ctx context.Context, key string, status int, body []byte) error {
	if c.skipping() {
		return ErrSkipped
	}
	raw, err := json.Marshal(stored{Status: status, Body: body})
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	if err := c.rdb.SetArgs(ctx, key, raw, goredis.SetArgs{Mode: "NX", TTL: c.cfg.TTL}).Err(); err != nil && !errors.Is(err, goredis.Nil) {
		return c.failed(fmt.Errorf("redis set: %w", err))
	}
	return nil
}

// Check pings Redis (readiness).
func (c *ReplayCache) Check(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

func decodeStored(raw []byte) (stored, bool) {
	var s stored
	if json.Unmarshal(raw, &s) != nil || s.Status < 100 || s.Status > 599 {
		return stored{}, false
	}
	return s, true
}
