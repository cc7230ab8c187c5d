package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
)

// source is a KeySource that fails the first failures calls and can be
// held (gate) to test single-flight.
type source struct {
	pub      ed25519.PublicKey
	failures atomic.Int64
	calls    atomic.Int64
	gate     chan struct{}
	extra    []*authv1.PublicKey
	inFlight atomic.Int64
	maxCalls atomic.Int64 // most fetches in flight at once
}

func (s *source) GetPublicKeys(ctx context.Context, _ *authv1.GetPublicKeysRequest, _ ...grpc.CallOption) (*authv1.GetPublicKeysResponse, error) {
	s.calls.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.maxCalls.Load(); n > m && !s.maxCalls.CompareAndSwap(m, n); m = s.maxCalls.Load() {
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.failures.Add(-1) >= 0 {
		return nil, errors.New("auth unavailable")
	}
	keys := append([]*authv1.PublicKey{{Kid: "k1", Algorithm: "EdDSA", Key: s.pub}}, s.extra...)
	return &authv1.GetPublicKeysResponse{Keys: keys, Issuer: "iss", Audience: "aud"}, nil
}

func newSource(t *testing.T) (*source, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &source{pub: pub}, priv
}

func sign(t *testing.T, priv ed25519.PrivateKey, kid string) string {
	tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"sub": "u-1", "name": "alice", "iss": "iss", "aud": "aud", "exp": time.Now().Add(time.Minute).Unix(),
	})
	tk.Header["kid"] = kid
	s, err := tk.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var quiet = slog.New(slog.DiscardHandler)

func TestRunRetriesUntilLoaded(t *testing.T) {
	src, priv := newSource(t)
	src.failures.Store(3)
	v := New(src, quiet, Config{InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if _, err := v.Verify(context.Background(), sign(t, priv, "k1")); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("before loading: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !v.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("keys not loaded")
		}
		time.Sleep(time.Millisecond)
	}
	if n := src.calls.Load(); n != 4 {
		t.Errorf("%d fetches, want 4", n)
	}
	c, err := v.Verify(context.Background(), sign(t, priv, "k1"))
	if err != nil || c.UserID != "u-1" || c.Username != "alice" {
		t.Fatalf("verify: %+v %v", c, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunStopsWhileRetrying(t *testing.T) {
	src, _ := newSource(t)
	src.failures.Store(1 << 30)
	v := New(src, quiet, Config{InitialBackoff: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := v.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if v.Ready() {
		t.Fatal("ready without keys")
	}
}

func TestRefreshIsSingleFlight(t *testing.T) {
	src, _ := newSource(t)
	src.gate = make(chan struct{})
	v := New(src, quiet, Config{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = v.Refresh(context.Background())
		}()
	}
	// Let the callers pile up on the one fetch, then release it.
	deadline := time.Now().Add(5 * time.Second)
	for src.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(src.gate)
	wg.Wait()
	if !v.Ready() {
		t.Fatal("not ready")
	}
	// Callers that came while a fetch was in flight shared it: never two
	// fetches at once.
	if n := src.maxCalls.Load(); n != 1 {
		t.Fatalf("%d fetches in flight at once", n)
	}
}

func TestUnusableKeysIgnored(t *testing.T) {
	src, priv := newSource(t)
	rsaLike := make([]byte, 64)
	src.extra = []*authv1.PublicKey{
		{Kid: "rs", Algorithm: "RS256", Key: rsaLike},
		{Kid: "short", Algorithm: "EdDSA", Key: []byte{1, 2, 3}},
	}
	v := New(src, quiet, Config{})
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), sign(t, priv, "k1")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), sign(t, priv, "short")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("kid of an unusable key: %v", err)
	}

	// A key set with no usable key is an error, not an empty set.
	src.pub = nil
	v2 := New(src, quiet, Config{})
	if err := v2.Refresh(context.Background()); err == nil || v2.Ready() {
		t.Fatal("loaded a key set without usable keys")
	}
}
