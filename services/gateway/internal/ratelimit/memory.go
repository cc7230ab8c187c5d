package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in this process, bounded to a number of buckets. A
// bucket that has refilled completely is the same as an absent one, so it
// is dropped when room is needed. When every bucket is still in use, a new
// key is refused (fail closed) until some refill: a flood of distinct keys
// can then delay new clients, but it can never lift the limit of the keys
// already tracked.
type Memory struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*memBucket
}

type memBucket struct {
	tokens float64
	at     time.Time
	rule   Rule // of the last use
}

// NewMemory returns a store of at most maxKeys buckets.
func NewMemory(maxKeys int) *Memory {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Memory{max: maxKeys, now: time.Now, buckets: map[string]*memBucket{}}
}

// refill brings b's tokens up to now under r.
func refill(b *memBucket, r Rule, now time.Time) {
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = min(float64(r.Burst), b.tokens+el*r.Rate)
		b.at = now
	}
	b.rule = r
}

// Take implements Store. It never fails.
func (m *Memory) Take(_ context.Context, buckets []Bucket) (Decision, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	bs := make([]*memBucket, len(buckets))
	var d Decision
	for i, bk := range buckets {
		b, ok := m.buckets[bk.Key]
		if !ok {
			b = &memBucket{tokens: float64(bk.Rule.Burst), at: now, rule: bk.Rule}
		} else {
			refill(b, bk.Rule, now)
		}
		bs[i] = b
		if w := waitFor(b.tokens, bk.Rule); w > d.RetryAfter {
			d.RetryAfter, d.Limited = w, i
		}
	}
	if d.RetryAfter > 0 {
		return d, nil
	}
	// Room for the new buckets, or no attempt at all.
	added := 0
	for _, bk := range buckets {
		if _, ok := m.buckets[bk.Key]; !ok {
			added++
		}
	}
	if len(m.buckets)+added > m.max {
		m.sweepLocked(now)
		if len(m.buckets)+added > m.max {
			return Decision{RetryAfter: retryAfterFull}, nil
		}
	}
	for i, bk := range buckets {
		bs[i].tokens--
		m.buckets[bk.Key] = bs[i]
	}
	return Decision{Allowed: true}, nil
}

// Refund implements Store. It never fails.
func (m *Memory) Refund(_ context.Context, buckets []Bucket) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, bk := range buckets {
		b, ok := m.buckets[bk.Key]
		if !ok {
			continue
		}
		refill(b, bk.Rule, now)
		b.tokens++
		if b.tokens >= float64(bk.Rule.Burst) {
			delete(m.buckets, bk.Key)
		}
	}
	return nil
}

// sweepLocked drops the buckets that have refilled completely.
func (m *Memory) sweepLocked(now time.Time) {
	for k, b := range m.buckets {
		refill(b, b.rule, now)
		if b.tokens >= float64(b.rule.Burst) {
			delete(m.buckets, k)
		}
	}
}

// Len returns the number of buckets held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}
