package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/merchshop/merchshop/services/gateway/internal/transport/httpapi"
)

func refreshCookie(t *testing.T, r reply) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, c := range r.resp.Cookies() {
		if c.Name == "refresh_token" {
			if found != nil {
				t.Fatal("two refresh_token cookies")
			}
			found = c
		}
	}
	if found == nil {
		t.Fatalf("no refresh_token cookie in %v", r.resp.Header.Values("Set-Cookie"))
	}
	return found
}

func cookieHeader(c *http.Cookie) []string {
	return []string{"Cookie", "refresh_token=" + c.Value}
}

func TestRefreshCookieFlow(t *testing.T) {
	e := newEnv(t, envOption{})
	r := e.do("POST", "/api/auth", `{"username":"alice","password":"pw"}`, "User-Agent", "merch-test/1.0")
	if r.status != 200 {
		t.Fatalf("auth: %d %s", r.status, r.body)
	}
	c1 := refreshCookie(t, r)
	if c1.Value == "" || !c1.HttpOnly || c1.SameSite != http.SameSiteStrictMode || c1.Path != "/api/auth" || c1.Secure {
		t.Fatalf("cookie attributes: %+v", c1)
	}
	if c1.MaxAge < 86000 || c1.MaxAge > 86400 {
		t.Fatalf("Max-Age %d, want about a day", c1.MaxAge)
	}
	e.w.mu.Lock()
	ua := e.w.userAgent
	e.w.mu.Unlock()
	if ua != "merch-test/1.0" {
		t.Fatalf("user agent at auth: %q", ua)
	}
	for k := range r.resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "grpc-") {
			t.Errorf("internal header leaked: %s", k)
		}
	}

	// Refresh rotates.
	r = e.do("POST", "/api/auth/refresh", "", cookieHeader(c1)...)
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	c2 := refreshCookie(t, r)
	if c2.Value == "" || c2.Value == c1.Value {
		t.Fatalf("refresh cookie not rotated: %q", c2.Value)
	}
	tok := decodeJSON(t, r.body).(map[string]any)["token"].(string)
	if r := e.do("GET", "/api/info", "", bearer(tok)...); r.status != 200 {
		t.Fatalf("refreshed access token: %d", r.status)
	}

	// The old token is refused, and the cookie cleared.
	r = e.do("POST", "/api/auth/refresh", "", cookieHeader(c1)...)
	wantError(t, r, 401, "invalid refresh token")
	if c := refreshCookie(t, r); c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("cookie not cleared: %+v", c)
	}

	// No cookie.
	wantError(t, e.do("POST", "/api/auth/refresh", ""), 401, "missing refresh token")

	// Logout ends the session and clears the cookie.
	r = e.do("DELETE", "/api/auth/logout", "", cookieHeader(c2)...)
	wantJSON(t, r, 200, `{}`)
	if c := refreshCookie(t, r); c.MaxAge >= 0 {
		t.Fatalf("logout did not clear the cookie: %+v", c)
	}
	wantError(t, e.do("POST", "/api/auth/refresh", "", cookieHeader(c2)...), 401, "invalid refresh token")
	// Logout without a session is fine.
	wantJSON(t, e.do("DELETE", "/api/auth/logout", ""), 200, `{}`)
}

func TestSecureCookies(t *testing.T) {
	e := newEnv(t, envOption{cfg: func(c *httpapi.Config) { c.SecureCookies = true }})
	r := e.do("POST", "/api/auth", `{"username":"alice","password":"pw"}`)
	if c := refreshCookie(t, r); !c.Secure {
		t.Fatalf("cookie not Secure: %+v", c)
	}
}
