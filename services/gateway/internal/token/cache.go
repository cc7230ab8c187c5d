package token

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/merchshop/merchshop/pkg/identity"
)

// verified is a cache of tokens that passed Verify. Whether a token is
// valid depends only on its bytes, the key set and the clock: the same
// bytes checked against the same key set before their expiry give the same
// answer every time (nbf and iat, once passed, stay passed). So an entry
// answers for exactly its token string, only while the key set it was
// checked with is still the current one (a rotation or a revoked key makes
// every entry miss), and only until the token's exp. Refused tokens are
// never cached, so garbage cannot crowd out the real entries.
//
// The cache is bounded: maxEntries over shards, each shard a map behind its
// own mutex; a full shard drops one entry per insert, an expired one if a
// small random sample (Go's map order is random) has one, else the one of
// the sample expiring first: all the eviction a cache of one-hour tokens
// needs.
type verified struct {
	seed   maphash.Seed
	shards []cacheShard
	perCap int
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	caller identity.Caller
	keys   *keySet
	exp    time.Time
}

const (
	cacheShards = 32
	evictSample = 8
)

func newVerified(maxEntries int) *verified {
	if maxEntries <= 0 {
		return nil
	}
	c := &verified{seed: maphash.MakeSeed(), shards: make([]cacheShard, cacheShards), perCap: max(1, maxEntries/cacheShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]cacheEntry)
	}
	return c
}

func (c *verified) shard(raw string) *cacheShard {
	return &c.shards[maphash.String(c.seed, raw)%cacheShards]
}

// get returns the caller of raw when raw was verified with ks and has not
// expired at now.
func (c *verified) get(raw string, ks *keySet, now time.Time) (identity.Caller, bool) {
	if c == nil {
		return identity.Caller{}, false
	}
	s := c.shard(raw)
	s.mu.Lock()
	e, ok := s.entries[raw]
	s.mu.Unlock()
	if !ok || e.keys != ks || !now.Before(e.exp) {
		return identity.Caller{}, false
	}
	return e.caller, true
}

// put records that raw was verified with ks and is valid until exp.
func (c *verified) put(raw string, ks *keySet, caller identity.Caller, exp, now time.Time) {
	if c == nil || !now.Before(exp) {
		return
	}
	s := c.shard(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[raw]; !ok && len(s.entries) >= c.perCap {
		// Drop one entry: the first expired (or stale) one among a few,
		// else the one of those expiring first. A few, not all: a full
		// scan under the lock on every insert into a full shard cost more
		// than the signature check the cache saves.
		var victim string
		var soonest time.Time
		looked := 0
		for k, e := range s.entries {
			if e.keys != ks || !now.Before(e.exp) {
				victim = k
				break
			}
			if victim == "" || e.exp.Before(soonest) {
				victim, soonest = k, e.exp
			}
			if looked++; looked == evictSample {
				break
			}
		}
		delete(s.entries, victim)
	}
	s.entries[raw] = cacheEntry{caller: caller, keys: ks, exp: exp}
}

// len is the number of entries (for tests).
func (c *verified) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
