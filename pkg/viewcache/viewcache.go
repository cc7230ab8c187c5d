// Package viewcache keeps one cached view per user (the GET /api/info
// answer) in Redis with exact invalidation: a view is served only when no
// write that could change it has happened since it was read, and a writer
// that cannot reach Redis can never let a stale view be served.
//
// Every user has one Redis hash, view:{<user id>}, with these fields:
//
//	g        the generation: bumped by every write, before and after it
//	p.<tok>  a pending write's lease: the Redis time (ms) it runs out at
//	pe       the latest live lease, or absent
//	vg, v    the cached view and the generation it was read at
//
// Writers (the services that own the data a view shows) call Begin before
// their database transaction and End after it, whatever its outcome. Begin
// bumps g and leaves a lease; End bumps g again and removes the lease.
// Readers call Get, which answers the view only when vg == g and no lease is
// live; on a miss they read the data from its owners and Put it, stamped
// with the g that Get saw, and Put stores it only if g is still that and no
// lease is live (a check-and-set in one script).
//
// Why that is exact. A reader that stored a view at generation G read g = G
// with no live lease before reading the data, and found the same at Put.
// So no Begin ran in between: every write that committed before the data
// was read either ended before Get (the data shows it) or had a live lease
// at Get (the reader would not have stored). A write that begins later
// bumps g, and the view stops matching. If the writer's End never arrives
// (the writer died, or lost Redis after its commit) the lease keeps readers
// off the user's view until it runs out; a writer never commits after
// CommitBy (the lease's end minus a margin), so by the time the lease ends
// its commit is visible to any reader that reads afterwards. A writer that
// cannot Begin does not write at all (its caller answers Unavailable).
//
// What it assumes: the hash is lost only as a whole (a Redis restart
// without persistence, key expiry, eviction of the key), never restored from
// an older snapshot. A lost hash loses the view with its generation, so no
// old view can match again; that is why the view and its generation live in
// one key. Run the cache's Redis without persistence (or on a server whose
// snapshots are never loaded back) - see docs/architecture.md.
package viewcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Defaults.
const (
	// DefaultLease is how long a write's lease lives without its End.
	DefaultLease = 30 * time.Second
	// DefaultCommitMargin is how long before its lease ends a writer stops
	// committing.
	DefaultCommitMargin = 10 * time.Second
	// DefaultTTL is how long an unread view is kept.
	DefaultTTL = 15 * time.Minute
)

// Key is the Redis key of a user's hash; the braces keep it in one slot of
// a Redis Cluster.
func Key(userID string) string { return "view:{" + userID + "}" }

// leaseScan drops a hash's run-out leases and returns the latest live one
// (0 when none). Shared by the scripts below.
const leaseScan = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function live_leases(key, now)
  local pe = 0
  local fields = redis.call('HKEYS', key)
  for _, f in ipairs(fields) do
    if string.sub(f, 1, 2) == 'p.' then
      local e = tonumber(redis.call('HGET', key, f)) or 0
      if e <= now then
        redis.call('HDEL', key, f)
      elseif e > pe then
        pe = e
      end
    end
  end
  return pe
end
local function set_pe(key, pe)
  if pe > 0 then redis.call('HSET', key, 'pe', pe) else redis.call('HDEL', key, 'pe') end
end
`

// beginScript: ARGV = token, lease ms, minimum key ttl ms.
var beginScript = goredis.NewScript(leaseScan + `
local now = now_ms()
local exp = now + tonumber(ARGV[2])
local pe = live_leases(KEYS[1], now)
if exp > pe then pe = exp end
redis.call('HINCRBY', KEYS[1], 'g', 1)
redis.call('HDEL', KEYS[1], 'v', 'vg')
redis.call('HSET', KEYS[1], 'p.' .. ARGV[1], exp)
set_pe(KEYS[1], pe)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`)

// endScript: ARGV = token, minimum key ttl ms.
var endScript = goredis.NewScript(leaseScan + `
local now = now_ms()
redis.call('HINCRBY', KEYS[1], 'g', 1)
redis.call('HDEL', KEYS[1], 'p.' .. ARGV[1], 'v', 'vg')
set_pe(KEYS[1], live_leases(KEYS[1], now))
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`)

// getScript replies {g, busy, view or nil}.
var getScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('HMGET', KEYS[1], 'g', 'pe', 'vg', 'v')
local g = r[1] or '0'
if r[2] and tonumber(r[2]) > now then return {g, 1, false} end
if r[4] and r[3] == g then return {g, 0, r[4]} end
return {g, 0, false}
`)

// putScript: ARGV = generation, view, ttl ms. Replies 1 when stored.
var putScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('HMGET', KEYS[1], 'g', 'pe')
if (r[1] or '0') ~= ARGV[1] then return 0 end
if r[2] and tonumber(r[2]) > now then return 0 end
redis.call('HSET', KEYS[1], 'g', ARGV[1], 'vg', ARGV[1], 'v', ARGV[2])
redis.call('HDEL', KEYS[1], 'pe')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// NewClient returns a Redis client with short timeouts, so that a Redis
// outage costs a request a few hundred milliseconds at most.
func NewClient(addr string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{
		Addr:         addr,
		DialTimeout:  300 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   1,
		// One dial attempt: the default retries a refused dial 5 times.
		DialerRetries:   1,
		PoolSize:        64,
		PoolTimeout:     300 * time.Millisecond,
		DisableIdentity: true,
	})
}

// ErrUnavailable is returned by Begin when the cache could not be told:
// the caller must not write.
var ErrUnavailable = errors.New("view cache unavailable")

// Change is one write's claim on the views of some users, from Begin to
// End.
type Change struct {
	users    []string
	token    string
	commitBy time.Time
}

// NewChange returns a change of users that must commit by commitBy, as a
// writer other than Writer (a fake in unit tests) hands out.
func NewChange(users []string, commitBy time.Time) Change {
	return Change{users: users, commitBy: commitBy}
}

// CommitBy is the last moment the write may commit (zero: no bound, the
// cache is off).
func (c Change) CommitBy() time.Time { return c.commitBy }

// Users are the users whose views the change covers.
func (c Change) Users() []string { return c.users }

// WriterConfig tunes a Writer; zero values take the defaults.
type WriterConfig struct {
	Lease        time.Duration
	CommitMargin time.Duration
}

// Writer marks the writes of a data owner. A nil *Writer is off: Begin
// and End do nothing (only for set-ups where no reader uses the cache).
type Writer struct {
	rdb    goredis.UniversalClient
	lease  time.Duration
	margin time.Duration
	now    func() time.Time
}

// NewWriter returns a writer over rdb.
func NewWriter(rdb goredis.UniversalClient, cfg WriterConfig) *Writer {
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.CommitMargin <= 0 || cfg.CommitMargin >= cfg.Lease {
		cfg.CommitMargin = cfg.Lease / 3
	}
	return &Writer{rdb: rdb, lease: cfg.Lease, margin: cfg.CommitMargin, now: time.Now}
}

// Begin invalidates the users' views and leaves a lease on each, before
// the write. On an error the change is still returned: pass it to End (it
// removes what was left) and do not write.
func (w *Writer) Begin(ctx context.Context, userIDs ...string) (Change, error) {
	if w == nil || len(userIDs) == 0 {
		return Change{users: userIDs}, nil
	}
	tok, err := newToken()
	if err != nil {
		return Change{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// The local clock starts before Redis sees the call, so the lease
	// Redis keeps ends no earlier than start + lease.
	start := w.now()
	c := Change{users: userIDs, token: tok, commitBy: start.Add(w.lease - w.margin)}
	minTTL := strconv.FormatInt((w.lease + time.Minute).Milliseconds(), 10)
	lease := strconv.FormatInt(w.lease.Milliseconds(), 10)
	if err := runEach(ctx, w.rdb, beginScript, userIDs, tok, lease, minTTL); err != nil {
		return c, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return c, nil
}

// End closes a change after its write, committed or not: the users' views
// are invalidated again and the leases removed. An error leaves the leases
// to run out, which keeps the views uncached until then; it is reported for
// logging only.
func (w *Writer) End(ctx context.Context, c Change) error {
	if w == nil || c.token == "" {
		return nil
	}
	minTTL := strconv.FormatInt((w.lease + time.Minute).Milliseconds(), 10)
	if err := runEach(ctx, w.rdb, endScript, c.users, c.token, minTTL); err != nil {
		return fmt.Errorf("view cache end: %w", err)
	}
	return nil
}

// Stamp is what a Get saw: the generation a view read afterwards may be
// stored at, and whether it may be stored at all.
type Stamp struct {
	gen       string
	cacheable bool
}

// Cacheable reports whether a view read after this Get may be Put.
func (s Stamp) Cacheable() bool { return s.cacheable }

// Result of a Get.
type Result int

// Get results.
const (
	Miss Result = iota // no view at the current generation
	Hit                // the view is current
	Busy               // a write is pending: read the data, do not store it
)

// Reader looks views up and stores them.
type Reader struct {
	rdb goredis.UniversalClient
	ttl time.Duration
}

// NewReader returns a reader over rdb keeping views for ttl (0: DefaultTTL).
func NewReader(rdb goredis.UniversalClient, ttl time.Duration) *Reader {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Reader{rdb: rdb, ttl: ttl}
}

// Get returns the user's view when it is current (Hit), and the stamp to
// Put a freshly read view with.
func (r *Reader) Get(ctx context.Context, userID string) ([]byte, Result, Stamp, error) {
	v, err := getScript.Run(ctx, r.rdb, []string{Key(userID)}).Slice()
	if err != nil {
		return nil, Miss, Stamp{}, fmt.Errorf("view cache get: %w", err)
	}
	if len(v) != 3 {
		return nil, Miss, Stamp{}, fmt.Errorf("view cache get: reply of %d elements", len(v))
	}
	gen, _ := v[0].(string)
	if busy, _ := v[1].(int64); busy == 1 {
		return nil, Busy, Stamp{gen: gen}, nil
	}
	st := Stamp{gen: gen, cacheable: true}
	if view, ok := v[2].(string); ok {
		return []byte(view), Hit, st, nil
	}
	return nil, Miss, st, nil
}

// Put stores a view read after the Get that gave st, unless a write began
// since; stored reports which.
func (r *Reader) Put(ctx context.Context, userID string, st Stamp, view []byte) (stored bool, err error) {
	if !st.cacheable {
		return false, nil
	}
	n, err := putScript.Run(ctx, r.rdb, []string{Key(userID)}, st.gen, view, r.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("view cache put: %w", err)
	}
	return n == 1, nil
}

// runEach runs script once per user, all in one round trip.
func runEach(ctx context.Context, rdb goredis.UniversalClient, s *goredis.Script, users []string, args ...any) error {
	if len(users) == 1 {
		return s.Run(ctx, rdb, []string{Key(users[0])}, args...).Err()
	}
	exec := func() ([]goredis.Cmder, error) {
		return rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, u := range users {
				s.EvalSha(ctx, p, []string{Key(u)}, args...)
			}
			return nil
		})
	}
	_, err := exec()
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return err
		}
		_, err = exec()
	}
	return err
}

func newToken() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
