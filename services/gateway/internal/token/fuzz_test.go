package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzVerifier is a Verifier with the keys of a fresh source loaded and a
// valid token of that key.
func fuzzVerifier(f *testing.F) (*Verifier, ed25519.PrivateKey, string) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	// A huge refetch interval: an unknown kid must not fetch in a loop.
	v := New(&source{pub: pub}, quiet, Config{MinRefreshInterval: time.Hour})
	if err := v.Refresh(context.Background()); err != nil {
		f.Fatal(err)
	}
	tk := jwtFor(priv, `{"alg":"EdDSA","kid":"k1","typ":"JWT"}`,
		`{"sub":"u-1","name":"alice","iss":"iss","aud":"aud","exp":`+itoa(time.Now().Add(time.Hour).Unix())+`}`)
	if _, err := v.Verify(context.Background(), tk); err != nil {
		f.Fatalf("the valid token is refused: %v", err)
	}
	return v, priv, tk
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func jwtFor(priv ed25519.PrivateKey, header, claims string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	return signing + "." + enc.EncodeToString(ed25519.Sign(priv, []byte(signing)))
}

// FuzzVerify feeds arbitrary strings to the verifier, with "{{token}}"
// standing for a valid token so that the fuzzer mutates around a real one:
// it never panics and accepts exactly the valid token, spelled exactly so
// (no other encoding of the same bytes, no extra characters).
func FuzzVerify(f *testing.F) {
	v, _, valid := fuzzVerifier(f)
	for _, s := range []string{
		"{{token}}", "{{token}}=", "{{token}}\n", " {{token}}", "{{token}}.", "x{{token}}",
		"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
		strings.Repeat("A", 5000),
	} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw string) {
		raw = strings.ReplaceAll(raw, "{{token}}", valid)
		c, err := v.Verify(ctx, raw)
		if raw == valid {
			if err != nil || c.UserID != "u-1" {
				t.Fatalf("valid token refused: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("accepted %q (valid is %q)", raw, valid)
		}
	})
}

// FuzzVerifySigned signs arbitrary header and claims JSON with the real
// key, so that the fuzzer reaches the claim checks: whatever Verify
// accepts has alg EdDSA, the known kid, a subject, an expiry in the
// future, the issuer and the audience.
func FuzzVerifySigned(f *testing.F) {
	v, priv, _ := fuzzVerifier(f)
	exp := itoa(time.Now().Add(time.Hour).Unix())
	for _, hc := range [][2]string{
		{`{"alg":"EdDSA","kid":"k1"}`, `{"sub":"u-1","iss":"iss","aud":"aud","exp":` + exp + `}`},
		{`{"alg":"EdDSA","kid":"k1"}`, `{"sub":"u-1","iss":"iss","aud":["x","aud"],"exp":` + exp + `}`},
		{`{"alg":"none","kid":"k1"}`, `{"sub":"u-1","iss":"iss","aud":"aud","exp":` + exp + `}`},
		{`{"alg":"EdDSA","kid":"k2"}`, `{"sub":"u-1","iss":"iss","aud":"aud","exp":` + exp + `}`},
		{`{"alg":"EdDSA","kid":"k1"}`, `{"sub":"","iss":"iss","aud":"aud","exp":` + exp + `}`},
		{`{"alg":"EdDSA","kid":"k1"}`, `{"sub":"u-1","iss":"iss","aud":"aud"}`},
		{`{"alg":"EdDSA","kid":"k1"}`, `{"sub":"u-1","iss":"iss","aud":"aud","exp":1}`},
		{`{"alg":"EdDSA","kid":"k1"}`, `{"sub":"u-1","iss":"other","aud":"aud","exp":` + exp + `}`},
		{`{"alg":"EdDSA","kid":"k1"}`, `{"sub":"u-1","iss":"iss","aud":"aud","exp":"` + exp + `"}`},
		{`{"alg":"EdDSA","kid":"k1"}`, `{"sub":"u-1","iss":"iss","aud":"aud","exp":` + exp + `,"nbf":9999999999}`},
		{`{"alg":"EdDSA","kid":1}`, `[]`},
		{`null`, `null`},
	} {
		f.Add(hc[0], hc[1])
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, header, claims string) {
		c, err := v.Verify(ctx, jwtFor(priv, header, claims))
		if err != nil {
			return
		}
		var h map[string]any
		if json.Unmarshal([]byte(header), &h) != nil || h["alg"] != "EdDSA" || h["kid"] != "k1" {
			t.Fatalf("accepted header %q", header)
		}
		var cl map[string]any
		if json.Unmarshal([]byte(claims), &cl) != nil {
			t.Fatalf("accepted claims that are not a JSON object: %q", claims)
		}
		if sub, _ := cl["sub"].(string); sub == "" || sub != c.UserID {
			t.Fatalf("accepted claims %q as user %q", claims, c.UserID)
		}
		// golang-jwt takes a NumericDate as a number or a numeric string.
		var e float64
		switch x := cl["exp"].(type) {
		case float64:
			e = x
		case string:
			e, _ = strconv.ParseFloat(x, 64)
		}
		if time.Unix(int64(e), 0).Before(time.Now().Add(-time.Minute)) {
			t.Fatalf("accepted claims %q without a future exp", claims)
		}
		if cl["iss"] != "iss" {
			t.Fatalf("accepted claims %q with the wrong issuer", claims)
		}
		switch aud := cl["aud"].(type) {
		case string:
			if aud != "aud" {
				t.Fatalf("accepted claims %q with the wrong audience", claims)
			}
		case []any:
			found := false
			for _, a := range aud {
				found = found || a == "aud"
			}
			if !found {
				t.Fatalf("accepted claims %q without the audience", claims)
			}
		default:
			t.Fatalf("accepted claims %q without an audience", claims)
		}
	})
}

// Found by FuzzVerifySigned: encoding/json reads {"suB":..} as sub and lets
// a repeated name win; such claim sets are refused.
func TestClaimsSpelledExactly(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	v := New(&source{pub: pub}, quiet, Config{MinRefreshInterval: time.Hour})
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	exp := itoa(time.Now().Add(time.Hour).Unix())
	header := `{"alg":"EdDSA","kid":"k1"}`
	for claims, ok := range map[string]bool{
		`{"sub":"u-1","iss":"iss","aud":"aud","exp":` + exp + `}`:                       true,
		`{"sub":"u-1","iss":"iss","aud":"aud","exp":` + exp + `,"role":"x"}`:            true,
		`{"suB":"u-1","iss":"iss","aud":"aud","exp":` + exp + `}`:                       false,
		`{"sub":"u-1","iss":"iss","Aud":"aud","exp":` + exp + `}`:                       false,
		`{"sub":"u-1","sub":"u-2","iss":"iss","aud":"aud","exp":` + exp + `}`:           false,
		`{"sub":"u-1","iss":"iss","aud":"aud","exp":` + exp + `,"EXP":1}`:               false,
		`{"sub":"u-1","iss":"iss","aud":"aud","exp":` + exp + `,"name":"a","Name":"b"}`: false,
	} {
		_, err := v.Verify(context.Background(), jwtFor(priv, header, claims))
		if (err == nil) != ok {
			t.Errorf("claims %s: err %v, want accepted=%v", claims, err, ok)
		}
	}
}
