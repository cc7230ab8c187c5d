// Package accesstoken issues the access tokens: JWTs signed with Ed25519
// (alg EdDSA) naming their key in the kid header. Verify is the same check
// the gateway makes with the keys from GetPublicKeys.
package accesstoken

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/merchshop/merchshop/services/auth/internal/app"
	"github.com/merchshop/merchshop/services/auth/internal/keys"
)

// Algorithm is the JWT alg of every token.
const Algorithm = "EdDSA"

// Claims are the claims of an access token: iss, aud, sub (the user id),
// iat, exp, jti, and name (the username).
type Claims struct {
	jwt.RegisteredClaims
	Name string `json:"name"`
}

// Config names the tokens' issuer and audience and their lifetime.
type Config struct {
	Issuer   string
	Audience string
	TTL      time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Issuer signs access tokens with the current key and lists the keys that
// verify them.
type Issuer struct {
	key  ed25519.PrivateKey
	kid  string
	cfg  Config
	keys []app.PublicKey
}

var _ app.TokenIssuer = (*Issuer)(nil)

// NewIssuer signs with signing; verifyOnly are older public keys still
// accepted (key rotation: they stay listed until the tokens they signed
// have expired).
func NewIssuer(signing ed25519.PrivateKey, verifyOnly []ed25519.PublicKey, cfg Config) (*Issuer, error) {
	if len(signing) != ed25519.PrivateKeySize {
		return nil, errors.New("signing key is not an Ed25519 private key")
	}
	if cfg.Issuer == "" || cfg.Audience == "" || cfg.TTL <= 0 {
		return nil, errors.New("access tokens need an issuer, an audience and a positive TTL")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pub := signing.Public().(ed25519.PublicKey)
	i := &Issuer{key: signing, kid: keys.KeyID(pub), cfg: cfg}
	seen := map[string]bool{}
	for _, k := range append([]ed25519.PublicKey{pub}, verifyOnly...) {
		kid := keys.KeyID(k)
		if seen[kid] {
			continue
		}
		seen[kid] = true
		i.keys = append(i.keys, app.PublicKey{KID: kid, Algorithm: Algorithm, Key: append([]byte(nil), k...)})
	}
	return i, nil
}

// KID is the id of the signing key.
func (i *Issuer) KID() string { return i.kid }

// Issuer implements app.TokenIssuer.
func (i *Issuer) Issuer() string { return i.cfg.Issuer }

// Audience implements app.TokenIssuer.
func (i *Issuer) Audience() string { return i.cfg.Audience }

// PublicKeys implements app.TokenIssuer: the signing key first.
func (i *Issuer) PublicKeys() []app.PublicKey {
	out := make([]app.PublicKey, len(i.keys))
	copy(out, i.keys)
	return out
}

// Issue implements app.TokenIssuer.
func (i *Issuer) Issue(userID, username string) (string, error) {
	now := i.cfg.Now().Truncate(time.Second)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.cfg.Issuer,
			Audience:  jwt.ClaimStrings{i.cfg.Audience},
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(i.cfg.TTL)),
			ID:        uuid.NewString(),
		},
		Name: username,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = i.kid
	s, err := tok.SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return s, nil
}

// Verify checks a token the way its consumers must: alg EdDSA, a known
// kid, a valid signature, iss and aud as expected, exp present and not
// passed. now is the clock (time.Now when nil).
func Verify(token string, set app.KeySet, now func() time.Time) (*Claims, error) {
	if now == nil {
		now = time.Now
	}
	byKID := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Algorithm == Algorithm && len(k.Key) == ed25519.PublicKeySize {
			byKID[k.KID] = ed25519.PublicKey(k.Key)
		}
	}
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := byKID[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k, nil
	},
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithIssuer(set.Issuer),
		jwt.WithAudience(set.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	)
	if err != nil {
		return nil, err
	}
	if claims.Subject == "" {
		return nil, errors.New("token has no subject")
	}
	return claims, nil
}
