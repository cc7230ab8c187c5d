package accesstoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/merchshop/merchshop/services/auth/internal/app"
	"github.com/merchshop/merchshop/services/auth/internal/keys"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func keySet(i *Issuer) app.KeySet {
	return app.KeySet{Keys: i.PublicKeys(), Issuer: i.Issuer(), Audience: i.Audience()}
}

var t0 = time.Unix(1_800_000_000, 0)

func cfgAt(now *time.Time) Config {
	return Config{Issuer: "merch-shop-auth", Audience: "merch-shop", TTL: time.Hour, Now: func() time.Time { return *now }}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	now := t0
	key := newKey(t)
	iss, err := NewIssuer(key, nil, cfgAt(&now))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue("6f9619ff-8b86-d011-b42d-00c04fc964ff", "alice")
	if err != nil {
		t.Fatal(err)
	}

	// Header: alg EdDSA, kid = first 16 hex of SHA-256 of the public key.
	hdrJSON, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		t.Fatal(err)
	}
	wantKID := keys.KeyID(key.Public().(ed25519.PublicKey))
	if hdr["alg"] != "EdDSA" || hdr["kid"] != wantKID || iss.KID() != wantKID {
		t.Fatalf("header %v, want alg EdDSA kid %s", hdr, wantKID)
	}

	// Verified with nothing but the published public key.
	pub := iss.PublicKeys()
	if len(pub) != 1 || pub[0].KID != wantKID || pub[0].Algorithm != "EdDSA" || len(pub[0].Key) != 32 {
		t.Fatalf("public keys %+v", pub)
	}
	claims, err := Verify(tok, keySet(iss), func() time.Time { return now.Add(59 * time.Minute) })
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != "6f9619ff-8b86-d011-b42d-00c04fc964ff" || claims.Name != "alice" ||
		claims.Issuer != "merch-shop-auth" || len(claims.Audience) != 1 || claims.Audience[0] != "merch-shop" ||
		claims.ID == "" || !claims.IssuedAt.Equal(t0) || !claims.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("claims %+v", claims)
	}
	// Also with the standard library alone, as any other verifier would.
	parts := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(ed25519.PublicKey(pub[0].Key), []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("signature does not verify with the raw public key")
	}
}

func TestExpiredTokenRejected(t *testing.T) {
	now := t0
	iss, _ := NewIssuer(newKey(t), nil, cfgAt(&now))
	tok, _ := iss.Issue("u1", "alice")
	_, err := Verify(tok, keySet(iss), func() time.Time { return t0.Add(time.Hour + time.Second) })
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("expired token: %v, want ErrTokenExpired", err)
	}
}

func TestWrongKeyIssuerAudienceRejected(t *testing.T) {
	now := t0
	clock := func() time.Time { return t0.Add(time.Minute) }
	iss, _ := NewIssuer(newKey(t), nil, cfgAt(&now))
	tok, _ := iss.Issue("u1", "alice")

	other, _ := NewIssuer(newKey(t), nil, cfgAt(&now))
	if _, err := Verify(tok, keySet(other), clock); err == nil {
		t.Fatal("verified with another service's keys")
	}
	// The right key under the wrong kid does not help either.
	forged := keySet(other)
	forged.Keys[0].Key = iss.PublicKeys()[0].Key
	if _, err := Verify(tok, forged, clock); err == nil {
		t.Fatal("verified with a key listed under another kid")
	}
	wrongIss := keySet(iss)
	wrongIss.Issuer = "someone-else"
	if _, err := Verify(tok, wrongIss, clock); !errors.Is(err, jwt.ErrTokenInvalidIssuer) {
		t.Fatalf("wrong issuer: %v", err)
	}
	wrongAud := keySet(iss)
	wrongAud.Audience = "other-app"
	if _, err := Verify(tok, wrongAud, clock); !errors.Is(err, jwt.ErrTokenInvalidAudience) {
		t.Fatalf("wrong audience: %v", err)
	}
	// A tampered payload fails the signature.
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"alice"`, `"mallory"`, 1))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	if _, err := Verify(tampered, keySet(iss), clock); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Fatalf("tampered token: %v", err)
	}
	// alg none and HMAC are refused.
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": "merch-shop-auth", "aud": "merch-shop", "sub": "u1", "exp": t0.Add(time.Hour).Unix()})
	none.Header["kid"] = iss.KID()
	s, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if _, err := Verify(s, keySet(iss), clock); err == nil {
		t.Fatal("alg none accepted")
	}
}

func TestRotationKeepsOldKeyVerifying(t *testing.T) {
	now := t0
	clock := func() time.Time { return t0.Add(time.Minute) }
	oldKey, newKey := newKey(t), newKey(t)
	old, _ := NewIssuer(oldKey, nil, cfgAt(&now))
	oldTok, _ := old.Issue("u1", "alice")

	rotated, err := NewIssuer(newKey, []ed25519.PublicKey{oldKey.Public().(ed25519.PublicKey), newKey.Public().(ed25519.PublicKey)}, cfgAt(&now))
	if err != nil {
		t.Fatal(err)
	}
	pub := rotated.PublicKeys()
	if len(pub) != 2 || pub[0].KID != rotated.KID() || pub[1].KID != old.KID() {
		t.Fatalf("keys %+v: want the current key first, the old one after, no duplicates", pub)
	}
	newTok, _ := rotated.Issue("u1", "alice")
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if _, err := Verify(tok, keySet(rotated), clock); err != nil {
			t.Fatalf("%s token after rotation: %v", name, err)
		}
	}
}
