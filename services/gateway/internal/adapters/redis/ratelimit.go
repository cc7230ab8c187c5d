package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/merchshop/merchshop/services/gateway/internal/ratelimit"
)

// bucketScript takes one token from every bucket (KEYS) or, when any has
// none, from none; or gives one back to every bucket. Each bucket is a hash
// {tk: tokens, ts: ms of the last change}, refilled at ARGV rate (tokens a
// millisecond) up to burst. The clock is Redis's own, so replicas with
// skewed clocks agree. Redis 7 replicates a script's effects, which allows
// TIME in it. Replies {1, 0, 0} when allowed, {0, wait ms, index (0-based)}
// when refused.
//
//	ARGV[1] = "take" | "refund"; then rate, burst per key.
var bucketScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local take = ARGV[1] == 'take'
local tokens = {}
local wait, limited = 0, 0
for i = 1, #KEYS do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local s = redis.call('HMGET', KEYS[i], 'tk', 'ts')
  local tk, ts = tonumber(s[1]), tonumber(s[2])
  if tk == nil or ts == nil then
    tk, ts = burst, now
  end
  if now > ts then
    tk = math.min(burst, tk + (now - ts) * rate)
  end
  tokens[i] = tk
  if take and tk < 1 then
    local w = math.ceil((1 - tk) / rate)
    if w > wait then
      wait, limited = w, i - 1
    end
  end
end
if wait > 0 then
  return {0, wait, limited}
end
for i = 1, #KEYS do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local tk = tokens[i]
  if take then
    tk = tk - 1
  else
    tk = math.min(burst, tk + 1)
  end
  if tk >= burst then
    redis.call('DEL', KEYS[i])
  else
    redis.call('HSET', KEYS[i], 'tk', string.format('%.6f', tk), 'ts', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate) + 1000)
  end
end
return {1, 0, 0}
`)

// RateStore keeps the login limiter's token buckets in Redis, shared by
// every gateway replica.
type RateStore struct {
	rdb goredis.UniversalClient
}

var _ ratelimit.Store = (*RateStore)(nil)

// NewRateStore returns a store over rdb (see NewClient: short timeouts).
func NewRateStore(rdb goredis.UniversalClient) *RateStore { return &RateStore{rdb: rdb} }

func (s *RateStore) run(ctx context.Context, mode string, buckets []ratelimit.Bucket) ([]int64, error) {
	keys := make([]string, len(buckets))
	args := make([]any, 0, 1+2*len(buckets))
	args = append(args, mode)
	for i, b := range buckets {
		keys[i] = b.Key
		perMS := b.Rule.Rate / 1000
		args = append(args, strconv.FormatFloat(perMS, 'g', -1, 64), b.Rule.Burst)
	}
	res, err := bucketScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("redis rate limit %s: %w", mode, err)
	}
	if len(res) != 3 {
		return nil, fmt.Errorf("redis rate limit %s: unexpected reply %v", mode, res)
	}
	return res, nil
}

// Take implements ratelimit.Store.
func (s *RateStore) Take(ctx context.Context, buckets []ratelimit.Bucket) (ratelimit.Decision, error) {
	res, err := s.run(ctx, "take", buckets)
	if err != nil {
		return ratelimit.Decision{}, err
	}
	if res[0] == 1 {
		return ratelimit.Decision{Allowed: true}, nil
	}
	return ratelimit.Decision{RetryAfter: time.Duration(res[1]) * time.Millisecond, Limited: int(res[2])}, nil
}

// Refund implements ratelimit.Store.
func (s *RateStore) Refund(ctx context.Context, buckets []ratelimit.Bucket) error {
	_, err := s.run(ctx, "refund", buckets)
	return err
}
