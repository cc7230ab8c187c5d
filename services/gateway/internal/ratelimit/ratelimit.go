// Package ratelimit bounds login attempts with token buckets: one per
// username and one per client address. A bucket holds at most Burst tokens
// and refills at Rate tokens a second. An attempt takes a token from each of
// its buckets before the credentials are checked (none left: refused with a
// retry-after) and gives them back when the attempt did not fail on the
// credentials, so only failed attempts consume in the long run while the
// number of attempts in flight at once is bounded by the tokens left.
//
// The buckets live in a shared Store (Redis, so that every gateway replica
// counts together). When the store fails, a bounded in-memory store of this
// replica decides instead, and says so in the log and the metrics: the limit
// keeps holding (per replica) rather than failing open.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Rule is a token bucket's shape. The zero Rule is "no limit".
type Rule struct {
	// Rate is the refill rate in tokens per second.
	Rate float64
	// Burst is the bucket's capacity.
	Burst int
}

// Enabled reports whether the rule limits anything.
func (r Rule) Enabled() bool { return r.Rate > 0 && r.Burst > 0 }

// String renders the rule as ParseRule reads it (the burst aside).
func (r Rule) String() string {
	if !r.Enabled() {
		return "off"
	}
	return fmt.Sprintf("%g/s burst %d", r.Rate, r.Burst)
}

// ParseRule reads "N/period" (such as "10/1m" or "100/1s"; a bare unit
// means one of it: "10/m") with burst as the capacity; burst <= 0 means N.
// "off", "0" and "" disable the rule.
func ParseRule(s string, burst int) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || strings.EqualFold(s, "off") {
		return Rule{}, nil
	}
	num, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rule{}, fmt.Errorf("rate %q: want N/period, such as 10/1m", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 0 {
		return Rule{}, fmt.Errorf("rate %q: N must be a whole number >= 0", s)
	}
	per = strings.TrimSpace(per)
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Rule{}, fmt.Errorf("rate %q: period must be a positive duration, such as 1m", s)
	}
	if n == 0 {
		return Rule{}, nil
	}
	if burst <= 0 {
		burst = n
	}
	return Rule{Rate: float64(n) / d.Seconds(), Burst: burst}, nil
}

// Bucket names one bucket and its rule.
type Bucket struct {
	Key  string
	Rule Rule
}

// Decision is the answer of Store.Take.
type Decision struct {
	Allowed bool
	// RetryAfter is, when refused, how long until every bucket has a token.
	RetryAfter time.Duration
	// Limited is, when refused, the index of a bucket that had no token.
	Limited int
}

// Store keeps buckets. Take takes one token from every bucket, or from
// none when any is empty; Refund gives one token back to every bucket.
type Store interface {
	Take(ctx context.Context, buckets []Bucket) (Decision, error)
	Refund(ctx context.Context, buckets []Bucket) error
}

// Observer is told what the limiter decided (for metrics); every field may
// be nil.
type Observer struct {
	// Decided gets "allowed" or "limited_<kind>" for every login attempt.
	Decided func(result string)
	// Fallback is called for every decision the in-memory store made
	// because the shared store failed.
	Fallback func()
}

// Config is what NewLogin needs.
type Config struct {
	// PerUser and PerAddr are the rules of the username and the client
	// address buckets (zero: that limit is off).
	PerUser, PerAddr Rule
	// Shared is the store shared by the replicas (nil: memory only).
	Shared Store
	// Memory is the fallback (and, without Shared, the only) store; nil
	// makes one with DefaultMaxKeys.
	Memory *Memory
	// Pause is how long the shared store is skipped after it failed, so
	// that an outage costs one timeout per Pause, not one per login
	// (default 1 s).
	Pause time.Duration
	Log   *slog.Logger
	Obs   Observer
}

// Login limits login attempts per username and per client address.
type Login struct {
	cfg   Config
	until atomic.Int64 // unix nanos until which the shared store is skipped
}

// NewLogin returns a login limiter.
func NewLogin(cfg Config) *Login {
	if cfg.Memory == nil {
		cfg.Memory = NewMemory(DefaultMaxKeys)
	}
	if cfg.Pause <= 0 {
		cfg.Pause = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Login{cfg: cfg}
}

// Bucket key prefixes. Usernames are hashed: keys stay short and carry no
// user input into Redis.
const (
	userPrefix = "rl:login:user:"
	addrPrefix = "rl:login:addr:"
)

func (l *Login) buckets(username, addr string) ([]Bucket, []string) {
	var bs []Bucket
	var kinds []string
	if l.cfg.PerUser.Enabled() && username != "" {
		sum := sha256.Sum256([]byte(username))
		bs = append(bs, Bucket{Key: userPrefix + hex.EncodeToString(sum[:16]), Rule: l.cfg.PerUser})
		kinds = append(kinds, "user")
	}
	if l.cfg.PerAddr.Enabled() && addr != "" {
		bs = append(bs, Bucket{Key: addrPrefix + addr, Rule: l.cfg.PerAddr})
		kinds = append(kinds, "addr")
	}
	return bs, kinds
}

// Reserve takes one attempt for username (empty when unknown) from the
// client address addr. When ok, done must be called with the attempt's
// outcome: failed (wrong credentials) keeps the tokens, anything else gives
// them back. When !ok, retryAfter says when to come back.
func (l *Login) Reserve(ctx context.Context, username, addr string) (done func(failed bool), retryAfter time.Duration, ok bool) {
	bs, kinds := l.buckets(username, addr)
	if len(bs) == 0 {
		return func(bool) {}, 0, true
	}
	store, fallback := l.store()
	d, err := store.Take(ctx, bs)
	if err != nil {
		l.sharedFailed(err)
		store, fallback = l.cfg.Memory, true
		d, _ = store.Take(ctx, bs)
	}
	if fallback && l.cfg.Obs.Fallback != nil {
		l.cfg.Obs.Fallback()
	}
	if !d.Allowed {
		l.decided("limited_" + kinds[min(max(d.Limited, 0), len(kinds)-1)])
		return nil, d.RetryAfter, false
	}
	l.decided("allowed")
	return func(failed bool) {
		if failed {
			return
		}
		if err := store.Refund(context.WithoutCancel(ctx), bs); err != nil {
			// The tokens stay taken until they refill: a lost refund
			// costs a little limit, never safety.
			l.sharedFailed(err)
		}
	}, 0, true
}

func (l *Login) decided(result string) {
	if l.cfg.Obs.Decided != nil {
		l.cfg.Obs.Decided(result)
	}
}

// store returns the store to use now and whether it is the fallback.
func (l *Login) store() (Store, bool) {
	if l.cfg.Shared == nil {
		return l.cfg.Memory, false
	}
	if time.Now().UnixNano() < l.until.Load() {
		return l.cfg.Memory, true
	}
	return l.cfg.Shared, false
}

func (l *Login) sharedFailed(err error) {
	now := time.Now()
	prev := l.until.Swap(now.Add(l.cfg.Pause).UnixNano())
	if prev < now.UnixNano() {
		// Logged once per pause, not once per request.
		l.cfg.Log.Warn("login rate limit store unavailable; this replica's in-memory limiter decides meanwhile",
			"error", err, "retry_in", l.cfg.Pause)
	}
}

// DefaultMaxKeys bounds the in-memory store.
const DefaultMaxKeys = 100_000

// retryAfterFull is the retry-after of a refusal because the memory store
// is full.
const retryAfterFull = 10 * time.Second

// waitFor is how long a bucket with tokens tk under rule r needs to reach
// one token.
func waitFor(tk float64, r Rule) time.Duration {
	if tk >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tk) / r.Rate * float64(time.Second)))
}
