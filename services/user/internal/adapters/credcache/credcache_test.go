package credcache

import (
	"fmt"
	"testing"
	"time"
)

func TestGetPut(t *testing.T) {
	c := New(10, time.Minute, nil)
	if _, ok := c.Get("alice", "pw"); ok {
		t.Fatal("hit on an empty cache")
	}
	c.Put("alice", "pw", "id-1")
	if id, ok := c.Get("alice", "pw"); !ok || id != "id-1" {
		t.Fatalf("Get = %q, %v", id, ok)
	}
	// The separator keeps ("ab","c") and ("a","bc") apart; other passwords miss.
	for _, k := range [][2]string{{"alice", "pw2"}, {"alic", "epw"}, {"alicep", "w"}, {"bob", "pw"}} {
		if _, ok := c.Get(k[0], k[1]); ok {
			t.Fatalf("unexpected hit for %q/%q", k[0], k[1])
		}
	}
}

func TestExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(10, time.Minute, nil)
	c.now = func() time.Time { return now }
	c.Put("alice", "pw", "id-1")
	now = now.Add(59 * time.Second)
	if _, ok := c.Get("alice", "pw"); !ok {
		t.Fatal("miss before the TTL")
	}
	now = now.Add(time.Second)
	if _, ok := c.Get("alice", "pw"); ok {
		t.Fatal("hit after the TTL")
	}
	if c.Len() != 0 {
		t.Fatalf("expired entry kept: %d entries", c.Len())
	}
}

func TestBounded(t *testing.T) {
	c := New(100, time.Minute, nil)
	for i := range 1000 {
		c.Put(fmt.Sprint("user", i), "pw", fmt.Sprint(i))
		if c.Len() > 100 {
			t.Fatalf("%d entries after %d puts, bound is 100", c.Len(), i+1)
		}
	}
	if _, ok := c.Get("user999", "pw"); !ok {
		t.Fatal("the newest entry was evicted")
	}
	// Overwriting an existing key does not evict anything.
	n := c.Len()
	c.Put("user999", "pw", "999")
	if c.Len() != n {
		t.Fatalf("overwrite changed the size from %d to %d", n, c.Len())
	}
}

func TestKeysAreProcessRandom(t *testing.T) {
	a, b := New(1, time.Minute, nil), New(1, time.Minute, nil)
	if a.key("alice", "pw") == b.key("alice", "pw") {
		t.Fatal("two caches derived the same key: the HMAC secret is not random")
	}
}
