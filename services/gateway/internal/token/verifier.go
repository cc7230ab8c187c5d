// Package token verifies the access JWTs issued by the auth service with the
// Ed25519 public keys auth publishes. The gateway never holds a signing key.
package token

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	"github.com/merchshop/merchshop/pkg/identity"
)

// Errors of Verify.
var (
	// ErrInvalid means the token must be refused (401).
	ErrInvalid = errors.New("invalid token")
	// ErrKeysUnavailable means the verification keys have not been loaded
	// yet (auth has not answered since start): an outage, not the client's
	// fault.
	ErrKeysUnavailable = errors.New("verification keys not loaded")
)

// KeySource is where the public keys come from (the auth service).
type KeySource interface {
	GetPublicKeys(ctx context.Context, in *authv1.GetPublicKeysRequest, opts ...grpc.CallOption) (*authv1.GetPublicKeysResponse, error)
}

// Config tunes a Verifier. Zero values take the defaults.
type Config struct {
	// Leeway for exp/nbf/iat against clock skew (default 5 s).
	Leeway time.Duration
	// MinRefreshInterval bounds how often an unknown kid triggers a refetch
	// (default 10 s).
	MinRefreshInterval time.Duration
	// RefreshInterval is the period of the background refetch that drops
	// revoked keys (default 5 min).
	RefreshInterval time.Duration
	// FetchTimeout bounds one GetPublicKeys call (default 3 s).
	FetchTimeout time.Duration
	// InitialBackoff and MaxBackoff pace the retries of the first load
	// (defaults 100 ms and 5 s).
	InitialBackoff, MaxBackoff time.Duration
	// OnFetch, when set, is told the outcome of every fetch (for metrics).
	OnFetch func(err error)
	// CacheEntries bounds the cache of verified tokens (default 100 000,
	// about 40 MB: one token per user of a 100k-user load; negative
	// disables it). See verified for why the cache is exact.
	CacheEntries int
	// Now is the clock (default time.Now; tests move it).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Leeway <= 0 {
		c.Leeway = 5 * time.Second
	}
	if c.MinRefreshInterval <= 0 {
		c.MinRefreshInterval = 10 * time.Second
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = 5 * time.Minute
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 3 * time.Second
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = 100_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

type keySet struct {
	keys     map[string]ed25519.PublicKey
	issuer   string
	audience string
	parser   *jwt.Parser
}

// same reports whether o verifies exactly what ks verifies.
func (ks *keySet) same(o *keySet) bool {
	if ks.issuer != o.issuer || ks.audience != o.audience || len(ks.keys) != len(o.keys) {
		return false
	}
	for kid, k := range ks.keys {
		if ok := o.keys[kid]; !k.Equal(ok) {
			return false
		}
	}
	return true
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	src KeySource
	log *slog.Logger
	cfg Config

	set   atomic.Pointer[keySet]
	group singleflight.Group
	cache *verified

	mu        sync.Mutex
	lastFetch time.Time
}

// New returns a Verifier with no keys; Run (or Refresh) loads them.
func New(src KeySource, log *slog.Logger, cfg Config) *Verifier {
	cfg.defaults()
	return &Verifier{src: src, log: log, cfg: cfg, cache: newVerified(cfg.CacheEntries)}
}

// Ready reports whether keys are loaded.
func (v *Verifier) Ready() bool { return v.set.Load() != nil }

// Check is Ready as a readiness check.
func (v *Verifier) Check(context.Context) error {
	if !v.Ready() {
		return ErrKeysUnavailable
	}
	return nil
}

// Run loads the keys, retrying with backoff until it succeeds, then refetches
// them periodically until ctx ends. It returns nil when ctx ends.
func (v *Verifier) Run(ctx context.Context) error {
	backoff := v.cfg.InitialBackoff
	for !v.Ready() {
		if err := v.Refresh(ctx); err != nil {
			v.log.Warn("loading token verification keys failed, retrying", "error", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			backoff = min(2*backoff, v.cfg.MaxBackoff)
		}
	}
	tick := time.NewTicker(v.cfg.RefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := v.Refresh(ctx); err != nil {
				v.log.Warn("refreshing token verification keys failed; keeping the old ones", "error", err)
			}
		}
	}
}

// Refresh fetches the keys now. Concurrent callers share one fetch.
func (v *Verifier) Refresh(ctx context.Context) error {
	_, err, _ := v.group.Do("fetch", func() (any, error) {
		v.mu.Lock()
		v.lastFetch = time.Now()
		v.mu.Unlock()
		// The fetch is shared: don't let one caller's cancellation fail it
		// for the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.cfg.FetchTimeout)
		defer cancel()
		err := v.fetch(fctx)
		if v.cfg.OnFetch != nil {
			v.cfg.OnFetch(err)
		}
		return nil, err
	})
	return err
}

func (v *Verifier) fetch(ctx context.Context) error {
	resp, err := v.src.GetPublicKeys(ctx, &authv1.GetPublicKeysRequest{})
	if err != nil {
		return fmt.Errorf("get public keys: %w", err)
	}
	ks := &keySet{keys: map[string]ed25519.PublicKey{}, issuer: resp.GetIssuer(), audience: resp.GetAudience()}
	for _, k := range resp.GetKeys() {
		if k.GetAlgorithm() != "EdDSA" || len(k.GetKey()) != ed25519.PublicKeySize || k.GetKid() == "" {
			v.log.Warn("ignoring unusable verification key", "kid", k.GetKid(), "alg", k.GetAlgorithm(), "len", len(k.GetKey()))
			continue
		}
		ks.keys[k.GetKid()] = ed25519.PublicKey(append([]byte(nil), k.GetKey()...))
	}
	if len(ks.keys) == 0 {
		return errors.New("get public keys: no usable EdDSA key")
	}
	opts := []jwt.ParserOption{
		// Canonical base64url only: a signature with other trailing bits
		// decodes to the same bytes, and one token must have one spelling.
		jwt.WithStrictDecoding(),
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithTimeFunc(v.cfg.Now),
	}
	if ks.issuer != "" {
		opts = append(opts, jwt.WithIssuer(ks.issuer))
	}
	if ks.audience != "" {
		opts = append(opts, jwt.WithAudience(ks.audience))
	}
	ks.parser = jwt.NewParser(opts...)
	if old := v.set.Load(); old != nil && old.same(ks) {
		// The periodic refetch usually finds the keys unchanged: keep the
		// old set, and with it every cached verification.
		return nil
	}
	v.set.Store(ks)
	return nil
}

// refreshForUnknownKid refetches the keys unless that happened recently.
func (v *Verifier) refreshForUnknownKid(ctx context.Context) {
	v.mu.Lock()
	recent := time.Since(v.lastFetch) < v.cfg.MinRefreshInterval
	v.mu.Unlock()
	if recent {
		return
	}
	if err := v.Refresh(ctx); err != nil {
		v.log.Warn("refetching verification keys for an unknown kid failed", "error", err)
	}
}

type claims struct {
	Name string `json:"name"`
	jwt.RegisteredClaims
}

// claimNames are the claims Verify reads, spelled as RFC 7519 spells them.
var claimNames = map[string]string{
	"sub": "sub", "name": "name", "iss": "iss", "aud": "aud", "exp": "exp", "nbf": "nbf", "iat": "iat", "jti": "jti",
}

// UnmarshalJSON decodes the claims strictly: encoding/json matches names
// case-insensitively and lets a repeated name win, so {"suB":..} or two
// "sub" would be read where other JWT libraries read something else. A
// claim set with a repeated name, or with a registered name in another
// case, is refused.
func (c *claims) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("claims are not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("claims: %w", err)
		}
		key, _ := t.(string)
		if seen[key] {
			return fmt.Errorf("claim %q repeated", key)
		}
		seen[key] = true
		if want, ok := claimNames[strings.ToLower(key)]; ok && key != want {
			return fmt.Errorf("claim %q is not spelled %q", key, want)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("claims: %w", err)
		}
	}
	type plain claims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// MaxTokenLen bounds the tokens Verify parses (auth's are a few hundred
// bytes).
const MaxTokenLen = 4096

// wellFormed reports whether raw is three base64url segments joined by
// dots and at most MaxTokenLen long. The base64 decoder would skip CR and
// LF; refusing every other character first keeps one spelling per token
// and bounds the work spent on garbage.
func wellFormed(raw string) bool {
	if len(raw) > MaxTokenLen {
		return false
	}
	dots := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return dots == 2
}

// Verify checks raw (the token without "Bearer ") and returns the caller it
// was issued to. Errors wrap ErrInvalid or ErrKeysUnavailable.
func (v *Verifier) Verify(ctx context.Context, raw string) (identity.Caller, error) {
	ks := v.set.Load()
	if ks == nil {
		return identity.Caller{}, ErrKeysUnavailable
	}
	now := v.cfg.Now()
	if caller, ok := v.cache.get(raw, ks, now); ok {
		return caller, nil
	}
	if !wellFormed(raw) {
		return identity.Caller{}, fmt.Errorf("%w: not a compact JWS", ErrInvalid)
	}
	var c claims
	tok, err := ks.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		if k, ok := v.set.Load().keys[kid]; ok {
			return k, nil
		}
		v.refreshForUnknownKid(ctx)
		if k, ok := v.set.Load().keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	})
	if err != nil {
		return identity.Caller{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !tok.Valid || c.Subject == "" {
		return identity.Caller{}, fmt.Errorf("%w: no subject", ErrInvalid)
	}
	caller := identity.Caller{UserID: c.Subject, Username: c.Name}
	// Cached under the set it was checked with; the key-lookup callback
	// may have refetched, so an entry made under a set that is no longer
	// current would simply miss.
	v.cache.put(raw, ks, caller, c.ExpiresAt.Time, now)
	return caller, nil
}
