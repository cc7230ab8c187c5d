package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	"github.com/merchshop/merchshop/services/gateway/internal/token"
)

// benchKeys is a KeySource with one Ed25519 key, as auth publishes it.
type benchKeys struct{ pub ed25519.PublicKey }

func (k benchKeys) GetPublicKeys(context.Context, *authv1.GetPublicKeysRequest, ...grpc.CallOption) (*authv1.GetPublicKeysResponse, error) {
	return &authv1.GetPublicKeysResponse{
		Keys:   []*authv1.PublicKey{{Kid: "k1", Algorithm: "EdDSA", Key: k.pub}},
		Issuer: "merch-shop-auth", Audience: "merch-shop",
	}, nil
}

// benchVerifier returns a loaded verifier and a token shaped like the ones
// auth issues (kid, iss, aud, sub, name, iat, exp, jti).
func benchVerifier(b *testing.B, cacheEntries int) (*token.Verifier, string) {
	b.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	v := token.New(benchKeys{pub: pub}, slog.New(slog.DiscardHandler), token.Config{CacheEntries: cacheEntries})
	if err := v.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "merch-shop-auth", "aud": []string{"merch-shop"}, "sub": "6f1c1e0e-6a4b-4d0e-9d55-1f0b8a0c9e21",
		"name": "load-000042", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "0d9b1c7e-5b7f-4f7e-8d3c-2a1e9f6b4c10",
	})
	tk.Header["kid"] = "k1"
	raw, err := tk.SignedString(priv)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), raw); err != nil {
		b.Fatal(err)
	}
	return v, raw
}

// BenchmarkVerify is the full token check, as a token's first request pays
// it (the cache off): parse the JWT, check the Ed25519 signature,
// algorithm, issuer, audience, expiry.
func BenchmarkVerify(b *testing.B) {
	benchVerify(b, -1)
}

// BenchmarkVerifyCached is the check of a token verified before (the
// cache's answer: a map look-up under the token and the key set).
func BenchmarkVerifyCached(b *testing.B) {
	benchVerify(b, 0)
}

func benchVerify(b *testing.B, cacheEntries int) {
	v, raw := benchVerifier(b, cacheEntries)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel is the full check from all cores at once (the
// verifier is shared by every request).
func BenchmarkVerifyParallel(b *testing.B) {
	v, raw := benchVerifier(b, -1)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
