package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzIdempotencyKey checks the Idempotency-Key header's validation and the
// backend key made of it: a key is taken up to MaxIdempotencyKeyLen bytes,
// and the backend key is printable ASCII of bounded length, the same for
// the same key and different for different keys (two clients' keys never
// collide into one payment), also against the hashed form of long keys.
func FuzzIdempotencyKey(f *testing.F) {
	for _, c := range [][2]string{
		{"k1", "k2"}, {"", "a"}, {strings.Repeat("a", 64), strings.Repeat("a", 65)},
		{"sha256-" + strings.Repeat("0", 64), strings.Repeat("b", 100)}, {"caf\xc3\xa9", "cafe"}, {"a b", "a\tb"},
		{strings.Repeat("z", 200), strings.Repeat("z", 201)}, {"\x00", "\x7f"},
	} {
		f.Add(c[0], c[1])
	}
	prefix := "http:sendCoin:u-1:"
	maxLen := len(prefix) + len("sha256-") + 64
	f.Fuzz(func(t *testing.T, a, b string) {
		r := &http.Request{Header: http.Header{}}
		r.Header.Set("X-Idempotency-Key", b)
		r.Header.Set("Idempotency-Key", a)
		key, problem := clientKey(r)
		want := a
		if want == "" {
			want = b
		}
		if len(want) > MaxIdempotencyKeyLen {
			if problem == "" {
				t.Fatalf("key of %d bytes taken", len(want))
			}
			return
		}
		if problem != "" || key != want {
			t.Fatalf("key %q: got %q, problem %q", want, key, problem)
		}
		ka := backendKey("sendCoin", "u-1", a)
		if ka != backendKey("sendCoin", "u-1", a) {
			t.Fatal("backend key not deterministic")
		}
		if len(ka) > maxLen || !strings.HasPrefix(ka, prefix) {
			t.Fatalf("backend key %q for %q", ka, a)
		}
		for i := 0; i < len(ka); i++ {
			if ka[i] <= ' ' || ka[i] >= 0x7f {
				t.Fatalf("backend key %q has byte %#x", ka, ka[i])
			}
		}
		if a != b && backendKey("sendCoin", "u-1", b) == ka {
			t.Fatalf("keys %q and %q collide as %q", a, b, ka)
		}
	})
}
