package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/merchshop/merchshop/services/gateway/internal/ratelimit"
	"github.com/merchshop/merchshop/services/gateway/internal/transport/httpapi"
)

func limitedEnv(t *testing.T, perUser, perAddr int, trusted ...string) *env {
	t.Helper()
	tp, err := httpapi.ParseTrustedProxies(trusted)
	if err != nil {
		t.Fatal(err)
	}
	l := ratelimit.NewLogin(ratelimit.Config{
		PerUser: ratelimit.Rule{Rate: 1.0 / 60, Burst: perUser},
		PerAddr: ratelimit.Rule{Rate: 1.0 / 60, Burst: perAddr},
	})
	return newEnv(t, envOption{cfg: func(c *httpapi.Config) {
		c.LoginLimiter = l
		c.TrustedProxies = tp
	}})
}

func loginBody(name, password string) string {
	return fmt.Sprintf(`{"username":%q,"password":%q}`, name, password)
}

func wantTooMany(t *testing.T, r reply) {
	t.Helper()
	wantError(t, r, 429, "too many login attempts, try again later")
	s, err := strconv.Atoi(r.resp.Header.Get("Retry-After"))
	if err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q, want 1..60 seconds", r.resp.Header.Get("Retry-After"))
	}
}

func TestLoginLimitPerUser(t *testing.T) {
	e := limitedEnv(t, 3, 100)
	e.login("alice")
	// Successful logins do not count.
	for range 10 {
		e.login("alice")
	}
	for range 3 {
		wantError(t, e.do("POST", "/api/auth", loginBody("alice", "wrong")), 401, "invalid username or password")
	}
	wantTooMany(t, e.do("POST", "/api/auth", loginBody("alice", "wrong")))
	// Locked: even the right password waits, so guessing learns nothing.
	wantTooMany(t, e.do("POST", "/api/auth", loginBody("alice", "pw-alice")))
	// A field spelled differently is not the username protojson reads:
	// the limiter counts the name auth sees.
	wantTooMany(t, e.do("POST", "/api/auth", `{"Username":"bob","username":"alice","password":"x"}`))
	// Others are not affected.
	e.login("bob")
	if m := string(e.do("GET", "/metrics", "").body); !strings.Contains(m, `http_requests_total{code="429",route="/api/auth"} 3`) {
		t.Error("429s not counted under their route")
	}
}

func TestLoginLimitBadInputDoesNotCount(t *testing.T) {
	e := limitedEnv(t, 1, 1)
	for range 5 {
		wantError(t, e.do("POST", "/api/auth", `{"username":"alice"}`), 400, "password is required")
		wantError(t, e.do("POST", "/api/auth", `{`), 400, "invalid JSON body")
	}
	e.login("alice")
}

func TestLoginLimitPerAddress(t *testing.T) {
	e := limitedEnv(t, 100, 2)
	for _, name := range []string{"a1", "a2", "a3"} {
		e.login(name)
	}
	// Password spraying: one failure per user, from one address.
	wantError(t, e.do("POST", "/api/auth", loginBody("a1", "x")), 401, "invalid username or password")
	wantError(t, e.do("POST", "/api/auth", loginBody("a2", "x")), 401, "invalid username or password")
	wantTooMany(t, e.do("POST", "/api/auth", loginBody("a3", "x")))
}

func TestLoginLimitForwardedFor(t *testing.T) {
	// Without trusted proxies X-Forwarded-For is ignored: a client cannot
	// pick a fresh address per attempt.
	e := limitedEnv(t, 100, 1)
	e.login("a1")
	wantError(t, e.do("POST", "/api/auth", loginBody("a1", "x"), "X-Forwarded-For", "203.0.113.1"), 401, "invalid username or password")
	wantTooMany(t, e.do("POST", "/api/auth", loginBody("a1", "x"), "X-Forwarded-For", "203.0.113.2"))

	// Behind a trusted proxy, the forwarded client is the key.
	e = limitedEnv(t, 100, 1, "127.0.0.0/8")
	e.login("a1")
	wantError(t, e.do("POST", "/api/auth", loginBody("a1", "x"), "X-Forwarded-For", "203.0.113.1"), 401, "invalid username or password")
	wantTooMany(t, e.do("POST", "/api/auth", loginBody("a1", "x"), "X-Forwarded-For", "203.0.113.1"))
	wantError(t, e.do("POST", "/api/auth", loginBody("a1", "x"), "X-Forwarded-For", "203.0.113.2"), 401, "invalid username or password")
	// A spoofed entry left of the real client does not help.
	wantTooMany(t, e.do("POST", "/api/auth", loginBody("a1", "x"), "X-Forwarded-For", "198.51.100.9, 203.0.113.2"))
}

func TestLoginLimitOnlyOnAuth(t *testing.T) {
	e := limitedEnv(t, 1, 1)
	tok := bearer(e.login("alice"))
	for range 5 {
		wantError(t, e.do("GET", "/api/info", "", "Authorization", "Bearer nope"), 401, "invalid or expired token")
		wantError(t, e.do("POST", "/api/auth/refresh", ""), 401, "missing refresh token")
	}
	if r := e.do("GET", "/api/info", "", tok...); r.status != 200 {
		t.Fatalf("info: %d %s", r.status, r.body)
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := httpapi.ParseTrustedProxies([]string{"10.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		remote, xff string
		trusted     httpapi.TrustedProxies
		want        string
	}{
		{remote: "192.0.2.1:1234", want: "192.0.2.1"},
		{remote: "192.0.2.1:1234", xff: "203.0.113.5", want: "192.0.2.1"},
		{remote: "192.0.2.1:1234", xff: "203.0.113.5", trusted: trusted, want: "192.0.2.1"},
		{remote: "10.1.2.3:80", xff: "203.0.113.5", trusted: trusted, want: "203.0.113.5"},
		{remote: "10.1.2.3:80", xff: "203.0.113.5, 10.9.9.9", trusted: trusted, want: "203.0.113.5"},
		{remote: "10.1.2.3:80", xff: "evil, 203.0.113.5", trusted: trusted, want: "203.0.113.5"},
		{remote: "10.1.2.3:80", xff: "203.0.113.5, garbage", trusted: trusted, want: "10.1.2.3"},
		{remote: "10.1.2.3:80", xff: "10.0.0.7", trusted: trusted, want: "10.0.0.7"},
		{remote: "10.1.2.3:80", trusted: trusted, want: "10.1.2.3"},
		{remote: "[::1]:80", xff: "[2001:db8:1:2:3:4:5:6]:4711", trusted: trusted, want: "2001:db8:1:2::/64"},
		{remote: "[2001:db8::1]:80", want: "2001:db8::/64"},
		{remote: "[fe80::1%eth0]:80", want: "fe80::/64"},
		{remote: "[::ffff:192.0.2.1]:80", want: "192.0.2.1"},
		{remote: "pipe", want: ""},
	} {
		r := httptest.NewRequest(http.MethodPost, "/api/auth", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := httpapi.ClientAddr(r, c.trusted); got != c.want {
			t.Errorf("ClientAddr(%q, xff %q) = %q, want %q", c.remote, c.xff, got, c.want)
		}
	}
	if _, err := httpapi.ParseTrustedProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("bad prefix accepted")
	}
}

// The limiter refuses quickly: a refused attempt never reaches auth.
func TestLoginLimitRefusalIsCheap(t *testing.T) {
	e := limitedEnv(t, 1, 100)
	e.login("alice")
	wantError(t, e.do("POST", "/api/auth", loginBody("alice", "x")), 401, "invalid username or password")
	before := e.w.logins.Load()
	for range 50 {
		wantTooMany(t, e.do("POST", "/api/auth", loginBody("alice", "x")))
	}
	if n := e.w.logins.Load() - before; n != 0 {
		t.Fatalf("%d refused attempts reached auth", n)
	}
}
