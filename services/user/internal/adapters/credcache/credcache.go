// Package credcache is a bounded in-memory cache of recently verified
// credentials, so that repeated logins skip bcrypt.
//
// Trade-offs, accepted deliberately:
//   - An entry says "this username and password were correct less than TTL
//     ago". A password change would have to invalidate it; there is no
//     password change API yet, so nothing does. When one is added, it must
//     purge the user's entries (or the TTL bounds how long an old password
//     keeps working, per replica).
//   - Keys are HMAC-SHA256(process-random key, username 0x00 password): a
//     dump of the process memory shows keyed hashes and user ids, never a
//     password, and the key dies with the process, so the entries cannot be
//     brute-forced offline the way an unkeyed hash could be cheaply.
//   - The cache is per replica and bounded: when full, a random entry is
//     evicted (Go's map iteration starts at a random point), which is good
//     enough for a working set of active users and needs no bookkeeping.
//   - What it buys (BenchmarkLogin* in internal/app, docs/benchmarks.md): a
//     repeat login answered here costs well under a microsecond, against
//     tens of milliseconds of CPU for a bcrypt comparison at cost 10. First
//     logins stay bcrypt-bound: they must hash.
package credcache

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type key [sha256.Size]byte

type entry struct {
	userID  string
	expires time.Time
}

// Cache maps keyed hashes of credentials to user ids.
type Cache struct {
	max int
	ttl time.Duration
	now func() time.Time

	macPool sync.Pool

	mu      sync.Mutex
	entries map[key]entry

	hits, misses prometheus.Counter
	size         prometheus.GaugeFunc
}

// New returns a cache of at most maxEntries entries living ttl each. reg
// receives its metrics (may be nil).
func New(maxEntries int, ttl time.Duration, reg prometheus.Registerer) *Cache {
	if maxEntries <= 0 {
		maxEntries = 1
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // documented never to fail (Go 1.24+)
	c := &Cache{
		max: maxEntries, ttl: ttl, now: time.Now,
		entries: make(map[key]entry),
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "user_credential_cache_hits_total", Help: "Logins answered from the verified-credential cache.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "user_credential_cache_misses_total", Help: "Logins that needed bcrypt.",
		}),
	}
	c.macPool.New = func() any { return hmac.New(sha256.New, secret) }
	c.size = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "user_credential_cache_entries", Help: "Entries in the verified-credential cache.",
	}, func() float64 { c.mu.Lock(); defer c.mu.Unlock(); return float64(len(c.entries)) })
	if reg != nil {
		reg.MustRegister(c.hits, c.misses, c.size)
	}
	return c
}

func (c *Cache) key(username, password string) key {
	m := c.macPool.Get().(hash.Hash)
	defer c.macPool.Put(m)
	m.Reset()
	_, _ = m.Write([]byte(username)) // a hash.Hash never returns an error
	_, _ = m.Write([]byte{0})
	_, _ = m.Write([]byte(password))
	var k key
	m.Sum(k[:0])
	return k
}

// Get returns the user id stored for these credentials, if fresh.
func (c *Cache) Get(username, password string) (string, bool) {
	k := c.key(username, password)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[k]
	if ok && !now.Before(e.expires) {
		delete(c.entries, k)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		c.misses.Inc()
		return "", false
	}
	c.hits.Inc()
	return e.userID, true
}

// Put stores verified credentials.
func (c *Cache) Put(username, password, userID string) {
	k := c.key(username, password)
	e := entry{userID: userID, expires: c.now().Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evictLocked()
	}
	c.entries[k] = e
}

// Len returns the number of entries (expired ones included until touched).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// evictLocked removes one entry, preferring an expired one among the few
// it looks at.
func (c *Cache) evictLocked() {
	now := c.now()
	var victim key
	found := false
	n := 0
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
			return
		}
		if !found {
			victim, found = k, true
		}
		if n++; n >= 8 {
			break
		}
	}
	if found {
		delete(c.entries, victim)
	}
}
