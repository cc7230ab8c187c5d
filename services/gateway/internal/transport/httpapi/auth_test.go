package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func unsignedToken(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "."
}

func TestAuthMiddleware(t *testing.T) {
	e := newEnv(t, envOption{})
	good := e.login("alice")
	e.w.mu.Lock()
	alice := e.w.users["alice"]
	key := e.w.keys[0]
	e.w.mu.Unlock()
	now := time.Now()

	hs256 := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": alice.id, "name": "alice", "iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Hour).Unix(),
	})
	hs256.Header["kid"] = key.kid
	confused, err := hs256.SignedString([]byte(key.priv.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}

	refused := []struct {
		name   string
		header []string
		msg    string
	}{
		{"missing header", nil, "missing authorization header"},
		{"wrong scheme", []string{"Authorization", "Basic YWxpY2U6cHc="}, "authorization must be a bearer token"},
		{"token without scheme", []string{"Authorization", good}, "authorization must be a bearer token"},
		{"scheme only", []string{"Authorization", "Bearer"}, "authorization must be a bearer token"},
		{"two tokens", []string{"Authorization", "Bearer a b"}, "authorization must be a bearer token"},
		{"two headers", []string{"Authorization", "Bearer " + good, "Authorization", "Bearer " + good}, "more than one authorization header"},
		{"garbage", bearer("not-a-jwt"), "invalid or expired token"},
		{"truncated", bearer(good[:len(good)-5]), "invalid or expired token"},
		{"alg none", bearer(unsignedToken(t,
			map[string]any{"alg": "none", "typ": "JWT", "kid": key.kid},
			map[string]any{"sub": alice.id, "name": "alice", "iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Hour).Unix()})),
			"invalid or expired token"},
		{"HS256 with the public key", bearer(confused), "invalid or expired token"},
		{"expired", bearer(e.w.sign(key, alice, func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), "invalid or expired token"},
		{"no exp", bearer(e.w.sign(key, alice, func(c jwt.MapClaims) { delete(c, "exp") })), "invalid or expired token"},
		{"not yet valid", bearer(e.w.sign(key, alice, func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), "invalid or expired token"},
		{"wrong audience", bearer(e.w.sign(key, alice, func(c jwt.MapClaims) { c["aud"] = "someone-else" })), "invalid or expired token"},
		{"wrong issuer", bearer(e.w.sign(key, alice, func(c jwt.MapClaims) { c["iss"] = "evil" })), "invalid or expired token"},
		{"no subject", bearer(e.w.sign(key, alice, func(c jwt.MapClaims) { delete(c, "sub") })), "invalid or expired token"},
		{"wrong key, same kid", bearer(e.w.sign(newSigningKey(key.kid), alice, nil)), "invalid or expired token"},
		{"unknown kid", bearer(e.w.sign(newSigningKey("k9"), alice, nil)), "invalid or expired token"},
		{"no kid", bearer(func() string {
			tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": alice.id, "iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Hour).Unix()})
			s, _ := tk.SignedString(key.priv)
			return s
		}()), "invalid or expired token"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/api/info", "/api/history"} {
				r := e.do("GET", path, "", c.header...)
				wantError(t, r, 401, c.msg)
				if r.resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate header")
				}
			}
			wantError(t, e.do("POST", "/api/sendCoin", `{"toUser":"bob","amount":1}`, c.header...), 401, c.msg)
			wantError(t, e.do("GET", "/api/buy/cup", "", c.header...), 401, c.msg)
		})
	}
	if n := e.w.transfers.Load() + e.w.buys.Load(); n != 0 {
		t.Fatalf("%d operations went through with refused tokens", n)
	}

	accepted := [][]string{
		bearer(good),
		{"Authorization", "bearer " + good},
		{"Authorization", "BEARER  " + good},
		bearer(e.w.sign(key, alice, func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Second).Unix() })), // within leeway
	}
	for i, h := range accepted {
		if r := e.do("GET", "/api/info", "", h...); r.status != 200 {
			t.Errorf("accepted[%d]: %d %s", i, r.status, r.body)
		}
	}

	// Public routes need no token.
	if r := e.do("GET", "/api/merch", ""); r.status != 200 {
		t.Errorf("merch: %d", r.status)
	}
}

func TestKeysNotLoadedYet(t *testing.T) {
	e := newEnv(t, envOption{noKeys: true})
	tok := e.login("alice") // login is public and needs no keys
	wantError(t, e.do("GET", "/api/info", "", bearer(tok)...), 503, "service temporarily unavailable")
	// A request without a token is still refused as such.
	wantError(t, e.do("GET", "/api/info", ""), 401, "missing authorization header")
	if r := e.do("GET", "/api/merch", ""); r.status != 200 {
		t.Fatalf("merch: %d", r.status)
	}
	if err := e.verifier.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/api/info", "", bearer(tok)...); r.status != 200 {
		t.Fatalf("after loading keys: %d %s", r.status, r.body)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Run("unknown kid refetches", func(t *testing.T) {
		e := newEnv(t, envOption{tokenRefresh: time.Nanosecond})
		e.w.mu.Lock()
		e.w.keys = append([]signingKey{newSigningKey("k2")}, e.w.keys...)
		e.w.mu.Unlock()
		before := e.w.keyFetches.Load()
		tok := e.login("alice") // signed with k2, unknown to the gateway so far
		if r := e.do("GET", "/api/info", "", bearer(tok)...); r.status != 200 {
			t.Fatalf("token of a new key: %d %s", r.status, r.body)
		}
		if n := e.w.keyFetches.Load() - before; n != 1 {
			t.Fatalf("%d key fetches, want 1", n)
		}
		if r := e.do("GET", "/api/info", "", bearer(tok)...); r.status != 200 {
			t.Fatalf("again: %d", r.status)
		}
		if n := e.w.keyFetches.Load() - before; n != 1 {
			t.Fatalf("%d key fetches after a known kid, want 1", n)
		}
	})
	t.Run("refetch is rate-limited", func(t *testing.T) {
		e := newEnv(t, envOption{tokenRefresh: time.Hour})
		e.w.mu.Lock()
		alice := e.w.registerLocked("alice", "pw")
		e.w.mu.Unlock()
		before := e.w.keyFetches.Load()
		for range 5 {
			r := e.do("GET", "/api/info", "", bearer(e.w.sign(newSigningKey("k9"), alice, nil))...)
			wantError(t, r, 401, "invalid or expired token")
		}
		if n := e.w.keyFetches.Load() - before; n != 0 {
			t.Fatalf("%d key fetches within the minimum interval, want 0", n)
		}
	})
}
