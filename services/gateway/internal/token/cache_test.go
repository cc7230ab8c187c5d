package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/merchshop/merchshop/pkg/identity"
)

func signExp(t *testing.T, priv ed25519.PrivateKey, sub string, exp time.Time) string {
	t.Helper()
	tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"sub": sub, "name": "n-" + sub, "iss": "iss", "aud": "aud", "exp": exp.Unix(),
	})
	tk.Header["kid"] = "k1"
	s, err := tk.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a settable Config.Now.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time        { return time.Unix(0, c.t.Load()) }
func (c *clock) set(t time.Time)       { c.t.Store(t.UnixNano()) }
func newClock(t time.Time) *clock      { c := &clock{}; c.set(t); return c }
func (c *clock) add(d time.Duration)   { c.t.Add(int64(d)) }
func loaded(t *testing.T, v *Verifier) { t.Helper(); must(t, v.Refresh(context.Background())) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerifiedTokensAreCachedAndStillChecked(t *testing.T) {
	src, priv := newSource(t)
	clk := newClock(time.Now())
	v := New(src, quiet, Config{Now: clk.now})
	loaded(t, v)
	raw := signExp(t, priv, "u-1", clk.now().Add(time.Minute))
	for i := range 3 {
		c, err := v.Verify(context.Background(), raw)
		if err != nil || c.UserID != "u-1" || c.Username != "n-u-1" {
			t.Fatalf("verify %d: %+v %v", i, c, err)
		}
	}
	if n := v.cache.len(); n != 1 {
		t.Fatalf("%d cached entries, want 1", n)
	}
	// A token differing in one signature byte is another key: refused, and
	// not cached.
	forged := raw[:len(raw)-2] + flip(raw[len(raw)-2])
	if _, err := v.Verify(context.Background(), forged); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forged token: %v", err)
	}
	for _, garbage := range []string{"", "a.b.c", "x"} {
		if _, err := v.Verify(context.Background(), garbage); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: %v", garbage, err)
		}
	}
	if n := v.cache.len(); n != 1 {
		t.Fatalf("refused tokens were cached: %d entries", n)
	}
}

func flip(b byte) string {
	if b == 'A' {
		return "BA"
	}
	return "AA"
}

// TestCachedTokenExpires: past its exp (and the leeway) the cached token is
// refused like an uncached one.
func TestCachedTokenExpires(t *testing.T) {
	src, priv := newSource(t)
	clk := newClock(time.Now())
	v := New(src, quiet, Config{Now: clk.now, Leeway: time.Second})
	loaded(t, v)
	raw := signExp(t, priv, "u-1", clk.now().Add(time.Minute))
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute + 2*time.Second)
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired cached token accepted: %v", err)
	}
}

// TestCacheMissesAfterKeyChange: a rotation that drops the key a token was
// signed with makes the cached verification worthless; an unchanged
// refetch keeps it.
func TestCacheMissesAfterKeyChange(t *testing.T) {
	src, priv := newSource(t)
	v := New(src, quiet, Config{MinRefreshInterval: time.Hour})
	loaded(t, v)
	raw := signExp(t, priv, "u-1", time.Now().Add(time.Minute))
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	before := v.set.Load()
	loaded(t, v)
	if v.set.Load() != before {
		t.Fatal("an unchanged key set was replaced (every cached entry lost)")
	}
	if _, ok := v.cache.get(raw, v.set.Load(), time.Now()); !ok {
		t.Fatal("entry lost across an unchanged refetch")
	}
	// Auth now publishes another key under the same kid: the old key is
	// revoked, and a token signed with it must be refused at once.
	pub2, _, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	src.pub = pub2
	loaded(t, v)
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token of a revoked key was answered from the cache: %v", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newVerified(64)
	ks := &keySet{}
	now := time.Now()
	for i := range 1000 {
		c.put(fmt.Sprintf("tok-%d", i), ks, identity.Caller{UserID: "u"}, now.Add(time.Hour), now)
	}
	if n := c.len(); n > 64 {
		t.Fatalf("%d entries, bound 64", n)
	}
	// Expired entries go first.
	c2 := newVerified(cacheShards) // one per shard
	c2.put("old", ks, identity.Caller{}, now.Add(time.Second), now)
	later := now.Add(time.Minute)
	for i := range 200 {
		c2.put(fmt.Sprintf("new-%d", i), ks, identity.Caller{}, later.Add(time.Hour), later)
	}
	if _, ok := c2.get("old", ks, later); ok {
		t.Fatal("an expired entry answered")
	}
	if c2.len() > cacheShards {
		t.Fatalf("%d entries, bound %d", c2.len(), cacheShards)
	}
	// Disabled: nothing is kept, nothing answers.
	off := newVerified(-1)
	off.put("x", ks, identity.Caller{}, now.Add(time.Hour), now)
	if _, ok := off.get("x", ks, now); ok || off.len() != 0 {
		t.Fatal("a disabled cache answered")
	}
}
