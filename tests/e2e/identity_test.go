package e2e

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Identity at the edge: concurrent first logins of one name, hand-made
// tokens, and bad credentials input. TestAuth and TestUnauthorized cover the
// simpler cases (malformed bodies, a 65-character name, alg none on a real
// payload, a flipped signature byte, edited claims).

var b64 = base64.RawURLEncoding

// loginBurst is how many logins of one username the gateway lets run at
// once (AUTH_RATE_PER_USER's burst: every attempt holds a token while it
// runs), capped at want.
func loginBurst(t *testing.T, want int) int {
	t.Helper()
	rate := envOr("AUTH_RATE_PER_USER", "10/1m")
	if rate == "off" || rate == "0" {
		return want
	}
	n, _, _ := strings.Cut(rate, "/")
	burst, err := strconv.Atoi(envOr("AUTH_RATE_PER_USER_BURST", n))
	if err != nil || burst < 1 {
		t.Fatalf("AUTH_RATE_PER_USER %q / AUTH_RATE_PER_USER_BURST: want N/period and a burst >= 1", rate)
	}
	return min(want, burst)
}

// authBody is a POST /api/auth body.
func authBody(name, password string) string {
	b, _ := json.Marshal(map[string]string{"username": name, "password": password})
	return string(b)
}

// jwtPart decodes one base64url JSON part of a token without verifying
// anything.
func jwtPart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", token, len(parts))
	}
	raw, err := b64.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("token part %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("token part %d: %v", i, err)
	}
	return m
}

// subject is the sub claim of a token.
func subject(t *testing.T, token string) string {
	t.Helper()
	sub, _ := jwtPart(t, token, 1)["sub"].(string)
	if sub == "" {
		t.Fatalf("token has no sub: %v", jwtPart(t, token, 1))
	}
	return sub
}

// tokenOf returns the token of a 200 answer to POST /api/auth.
func tokenOf(t *testing.T, r reply, what string) string {
	t.Helper()
	wantStatus(t, r, 200, what)
	tok, _ := object(t, r)["token"].(string)
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("%s: body %s, want {\"token\":\"<JWT>\"}", what, r.body)
	}
	return tok
}

// loginsAtOnce sends POST /api/auth for name with each password at the same
// moment.
func loginsAtOnce(t *testing.T, name string, passwords []string) []reply {
	t.Helper()
	replies := make([]reply, len(passwords))
	errs := make([]error, len(passwords))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, pw := range passwords {
		wg.Go(func() {
			<-start
			replies[i], errs[i] = call("POST", "/api/auth", authBody(name, pw))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	return replies
}

func TestConcurrentFirstLoginsOfOneName(t *testing.T) {
	needSystem(t)
	t.Parallel()
	name := uniqueName("crowd")
	n := loginBurst(t, 15)
	passwords := make([]string, n)
	for i := range passwords {
		passwords[i] = "crowd-password"
	}
	var sub string
	tokens := make([]string, n)
	for i, r := range loginsAtOnce(t, name, passwords) {
		tokens[i] = tokenOf(t, r, fmt.Sprintf("concurrent first login %d of %d", i, n))
		s := subject(t, tokens[i])
		if sub == "" {
			sub = s
		}
		if s != sub {
			t.Fatalf("login %d is user %s, login 0 is user %s: one name made two users", i, s, sub)
		}
	}
	// One user, granted once.
	for i, tok := range tokens {
		u := &user{name: name, password: passwords[i], token: tok}
		if in := u.getInfo(t); in.coins != 1000 || len(in.inventory)+len(in.received)+len(in.sent) != 0 {
			t.Fatalf("info with token %d: %+v, want exactly 1000 coins and nothing else", i, in)
		}
	}
	// And the name now belongs to that user: a later login is the same one.
	again := tokenOf(t, do(t, "POST", "/api/auth", authBody(name, "crowd-password")), "later login")
	if s := subject(t, again); s != sub {
		t.Fatalf("later login is user %s, want %s", s, sub)
	}
}

func TestConcurrentFirstLoginsWithDifferentPasswords(t *testing.T) {
	needSystem(t)
	t.Parallel()
	name := uniqueName("contest")
	// Failed attempts keep their rate-limit tokens: at most burst attempts,
	// and fewer losers than that.
	n := loginBurst(t, 10)
	if n < 2 {
		t.Skip("the per-username login burst is below 2")
	}
	passwords := make([]string, n)
	for i := range passwords {
		passwords[i] = "red-" + name
		if i%2 == 1 {
			passwords[i] = "blue-" + name
		}
	}
	replies := loginsAtOnce(t, name, passwords)
	winner := ""
	for i, r := range replies {
		if r.status == 200 {
			winner = passwords[i]
			break
		}
	}
	if winner == "" {
		t.Fatalf("no login of %d succeeded: first answer %d %s", n, replies[0].status, replies[0].body)
	}
	var sub, token string
	for i, r := range replies {
		if passwords[i] != winner {
			wantError(t, r, 401, fmt.Sprintf("login %d with the losing password", i))
			continue
		}
		tok := tokenOf(t, r, fmt.Sprintf("login %d with the winning password", i))
		s := subject(t, tok)
		if sub == "" {
			sub, token = s, tok
		}
		if s != sub {
			t.Fatalf("login %d is user %s, another is %s", i, s, sub)
		}
	}
	u := &user{name: name, password: winner, token: token}
	if in := u.getInfo(t); in.coins != 1000 {
		t.Fatalf("coins %d, want 1000", in.coins)
	}
}

// signEdDSA makes a compact JWS with an Ed25519 key.
func signEdDSA(key ed25519.PrivateKey, header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	return input + "." + b64.EncodeToString(ed25519.Sign(key, []byte(input)))
}

// signHS256 makes a compact JWS with HMAC-SHA256.
func signHS256(secret []byte, header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

// copyClaims returns the claims with some replaced; a nil value removes
// the claim.
func copyClaims(claims map[string]any, set map[string]any) map[string]any {
	out := make(map[string]any, len(claims)+len(set))
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range set {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// devSigningKey returns the system's signing key when this machine holds
// it (a local run with the development key: E2E_AUTH_SIGNING_KEY_FILE, or
// the auth service's default $MERCH_STATE_DIR/secrets/auth_ed25519.pem) and
// it is the key named kid; nil otherwise.
func devSigningKey(t *testing.T, kid string) ed25519.PrivateKey {
	t.Helper()
	path := os.Getenv("E2E_AUTH_SIGNING_KEY_FILE")
	if path == "" {
		path = filepath.Join(envOr("MERCH_STATE_DIR", ".state"), "secrets", "auth_ed25519.pem")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	priv, ok := k.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil
	}
	// The auth service names a key by the first 16 hex digits of the
	// SHA-256 of its public key.
	sum := sha256.Sum256(priv.Public().(ed25519.PublicKey))
	if hex.EncodeToString(sum[:])[:16] != kid {
		return nil
	}
	return priv
}

func TestHandMadeTokensRefused(t *testing.T) {
	needSystem(t)
	t.Parallel()
	u := newUser(t, "tokens")
	header := jwtPart(t, u.token, 0)
	claims := jwtPart(t, u.token, 1)
	kid, _ := header["kid"].(string)
	if header["alg"] != "EdDSA" || kid == "" {
		t.Fatalf("issued token header %v, want alg EdDSA and a kid", header)
	}
	for _, c := range []string{"sub", "iss", "aud", "exp"} {
		if _, ok := claims[c]; !ok {
			t.Fatalf("issued token has no %s claim: %v", c, claims)
		}
	}
	_, randomKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edHeader := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": kid}
	past := time.Now().Add(-time.Hour).Unix()

	// What an attacker knows of the public key is what any verifier knows;
	// with the development key at hand the key-confusion case uses the real
	// public key, in the encodings a careless HMAC verifier might take.
	secrets := [][]byte{[]byte("not-the-key")}
	devKey := devSigningKey(t, kid)
	if devKey != nil {
		pub := devKey.Public().(ed25519.PublicKey)
		der, _ := x509.MarshalPKIXPublicKey(pub)
		secrets = append(secrets, pub, der, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
			[]byte(b64.EncodeToString(pub)))
	}

	refused := map[string]string{
		"forged signature (random key, real kid)": signEdDSA(randomKey, edHeader, claims),
		"expired, random key":                     signEdDSA(randomKey, edHeader, copyClaims(claims, map[string]any{"exp": past})),
		"unknown kid":                             signEdDSA(randomKey, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": "0000000000000000"}, claims),
		"no kid":                                  signEdDSA(randomKey, map[string]any{"alg": "EdDSA", "typ": "JWT"}, claims),
		"alg none with the real kid": b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+kid+`"}`)) + "." +
			strings.Split(u.token, ".")[1] + ".",
		"alg none, signature kept": b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+kid+`"}`)) + "." +
			strings.Split(u.token, ".")[1] + "." + strings.Split(u.token, ".")[2],
	}
	for i, s := range secrets {
		refused[fmt.Sprintf("HS256 keyed with public key form %d", i)] = signHS256(s, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
	}
	if devKey != nil {
		// The real key proves the hand-made tokens are well-formed: the
		// same claims re-signed by hand are accepted, so the refusals below
		// are for the reason each case names.
		control := signEdDSA(devKey, edHeader, claims)
		if r := do(t, "GET", "/api/info", "", "Authorization", "Bearer "+control); r.status != 200 {
			t.Fatalf("a hand-made token signed with the real key: %d %s, want 200", r.status, r.body)
		}
		refused["expired, real key"] = signEdDSA(devKey, edHeader, copyClaims(claims, map[string]any{"exp": past}))
		refused["wrong audience, real key"] = signEdDSA(devKey, edHeader, copyClaims(claims, map[string]any{"aud": "someone-else"}))
		refused["wrong issuer, real key"] = signEdDSA(devKey, edHeader, copyClaims(claims, map[string]any{"iss": "https://evil.example"}))
		refused["no exp, real key"] = signEdDSA(devKey, edHeader, copyClaims(claims, map[string]any{"exp": nil}))
		refused["alg none label, real signature"] = signEdDSA(devKey, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, claims)
		refused["alg ES256 label, real signature"] = signEdDSA(devKey, map[string]any{"alg": "ES256", "typ": "JWT", "kid": kid}, claims)
	} else {
		t.Log("the signing key is not on this machine: real-key cases skipped, random-key cases only")
	}
	for name, tok := range refused {
		wantError(t, do(t, "GET", "/api/info", "", "Authorization", "Bearer "+tok), 401, name)
	}
	// Unknown kids make the gateway look for new keys; the real token still
	// works afterwards.
	if in := u.getInfo(t); in.coins != 1000 {
		t.Fatalf("coins %d after the refused tokens", in.coins)
	}
}

func TestBadCredentialsInputCreatesNoUser(t *testing.T) {
	needSystem(t)
	t.Parallel()
	// Each case is refused with 400; then the name it would have created
	// (or the name a lenient server would have made of it: truncated,
	// trimmed) logs in with another password as a new user.
	cases := []struct {
		what, body, free string
	}{
		{"empty password", authBody(uniqueName("nopw"), ""), uniqueName("nopw")},
		{"73-byte password", authBody(uniqueName("longpw"), strings.Repeat("p", 73)), uniqueName("longpw")},
		{"73 bytes in 37 characters", authBody(uniqueName("widepw"), strings.Repeat("é", 36)+"p"), uniqueName("widepw")},
		{"password with a control character", authBody(uniqueName("ctlpw"), "pass\x01word"), uniqueName("ctlpw")},
		{"65-character username", authBody(uniqueName("x")+strings.Repeat("y", 65-len(uniqueName("x"))), "pw-65"),
			uniqueName("x") + strings.Repeat("y", 64-len(uniqueName("x")))},
		{"username with a space", authBody(uniqueName("two")+" words", "pw-space"), uniqueName("two")},
		{"username with leading and trailing spaces", authBody(" "+uniqueName("trim")+" ", "pw-trim"), uniqueName("trim")},
		{"username with a tab", authBody(uniqueName("tab")+"\t", "pw-tab"), uniqueName("tab")},
		{"username with a NUL", authBody(uniqueName("nul")+"\x00", "pw-nul"), uniqueName("nul")},
		{"username with a newline", authBody(uniqueName("nl")+"\nx", "pw-nl"), uniqueName("nl")},
		{"username with DEL", authBody(uniqueName("del")+"\x7f", "pw-del"), uniqueName("del")},
		{"empty strings", `{"username":"","password":""}`, ""},
		{"JSON string", `"` + uniqueName("str") + `"`, ""},
		{"JSON number", `42`, ""},
		{"JSON null", `null`, ""},
		{"JSON true", `true`, ""},
		{"password as a number", fmt.Sprintf(`{"username":%q,"password":123456}`, uniqueName("numpw")), uniqueName("numpw")},
		{"password as an object", fmt.Sprintf(`{"username":%q,"password":{"x":1}}`, uniqueName("objpw")), uniqueName("objpw")},
	}
	for _, c := range cases {
		wantError(t, do(t, "POST", "/api/auth", c.body), 400, c.what)
	}
	for _, c := range cases {
		if c.free == "" {
			continue
		}
		u := &user{name: c.free, password: "fresh-" + randomHex(6)}
		u.login(t) // fails unless the name is free or has this password
		if in := u.getInfo(t); in.coins != 1000 || len(in.inventory)+len(in.sent)+len(in.received) != 0 {
			t.Fatalf("%s: %s was not a fresh user: %+v", c.what, c.free, in)
		}
	}
	// The boundaries themselves are accepted: 64 characters, 72 bytes.
	long := uniqueName("edge")
	long += strings.Repeat("z", 64-len(long))
	edge := &user{name: long, password: strings.Repeat("q", 72)}
	edge.login(t)
	edge.login(t)
}
