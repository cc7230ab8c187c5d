// Package e2e is the black-box suite of Merch Shop: it talks to a running
// system over the published HTTP API only (BASE_URL, default
// http://127.0.0.1:8080). Without a gateway answering /healthz the tests
// skip, or fail under MERCH_REQUIRE_INFRA=1.
package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	baseURL = strings.TrimRight(envOr("BASE_URL", "http://127.0.0.1:8080"), "/")
	// runID makes this run's usernames unique.
	runID = randomHex(4)

	httpClient = &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 64, IdleConnTimeout: 30 * time.Second},
	}

	upOnce sync.Once
	upErr  error
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// needSystem skips the test (fails under MERCH_REQUIRE_INFRA=1) when the
// gateway does not answer /healthz.
func needSystem(t *testing.T) {
	t.Helper()
	upOnce.Do(func() {
		resp, err := httpClient.Get(baseURL + "/healthz")
		if err != nil {
			upErr = err
			return
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			upErr = fmt.Errorf("/healthz answered %d", resp.StatusCode)
		}
	})
	if upErr == nil {
		return
	}
	msg := "the system is not running at " + baseURL + " (" + upErr.Error() + "): start it with `make run`"
	if os.Getenv("MERCH_REQUIRE_INFRA") == "1" {
		t.Fatal(msg)
	}
	t.Skip("e2e test skipped: " + msg)
}

// reply is an HTTP answer.
type reply struct {
	status int
	body   []byte
	header http.Header
	resp   *http.Response
}

// call sends a request and returns the answer or a transport error (safe
// from any goroutine). hdr holds extra headers as name, value pairs.
func call(method, path, body string, hdr ...string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, baseURL+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, body: b, header: resp.Header, resp: resp}, nil
}

// do is call for the test goroutine: a transport error fails the test.
func do(t *testing.T, method, path, body string, hdr ...string) reply {
	t.Helper()
	r, err := call(method, path, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// decode parses JSON keeping numbers as json.Number.
func decode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	if dec.More() {
		t.Fatalf("trailing data after JSON: %q", b)
	}
	return v
}

func object(t *testing.T, r reply) map[string]any {
	t.Helper()
	m, ok := decode(t, r.body).(map[string]any)
	if !ok {
		t.Fatalf("body is not a JSON object: %s", r.body)
	}
	return m
}

// wantStatus fails unless r has the status.
func wantStatus(t *testing.T, r reply, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d (body %s)", what, r.status, status, r.body)
	}
}

// wantJSON fails unless r has the status and a body equal to want as JSON.
func wantJSON(t *testing.T, r reply, status int, want, what string) {
	t.Helper()
	wantStatus(t, r, status, what)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	if got, exp := decode(t, r.body), decode(t, []byte(want)); !reflect.DeepEqual(got, exp) {
		t.Fatalf("%s: body %s, want %s", what, r.body, want)
	}
}

// wantError fails unless r has the status and the body is exactly
// {"errors":"<non-empty message>"}.
func wantError(t *testing.T, r reply, status int, what string) {
	t.Helper()
	wantStatus(t, r, status, what)
	m := object(t, r)
	msg, ok := m["errors"].(string)
	if len(m) != 1 || !ok || msg == "" {
		t.Fatalf(`%s: error body %s, want {"errors":"<message>"}`, what, r.body)
	}
}

// intOf returns a JSON number as an int, failing for any other type.
func intOf(t *testing.T, v any, what string) int {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%s: %v (%T) is not a JSON number", what, v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%s: %s is not an integer", what, n)
	}
	return int(i)
}

// user is an authenticated account of this run.
type user struct {
	name, password, token string
	cookie                *http.Cookie
}

// uniqueName returns a username unique to this run.
func uniqueName(label string) string { return "e2e-" + runID + "-" + label }

// newUser registers a fresh user (first POST /api/auth).
func newUser(t *testing.T, label string) *user {
	t.Helper()
	u := &user{name: uniqueName(label), password: "pw-" + randomHex(6)}
	u.login(t)
	return u
}

func (u *user) login(t *testing.T) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": u.name, "password": u.password})
	r := do(t, "POST", "/api/auth", string(body))
	wantStatus(t, r, 200, "auth "+u.name)
	m := object(t, r)
	tok, ok := m["token"].(string)
	if len(m) != 1 || !ok || strings.Count(tok, ".") != 2 {
		t.Fatalf(`auth %s: body %s, want {"token":"<JWT>"}`, u.name, r.body)
	}
	u.token = tok
	u.cookie = refreshCookie(r)
}

func refreshCookie(r reply) *http.Cookie {
	for _, c := range r.resp.Cookies() {
		if c.Name == "refresh_token" {
			return c
		}
	}
	return nil
}

func (u *user) auth() []string { return []string{"Authorization", "Bearer " + u.token} }

// info is the decoded GET /api/info of a user.
type info struct {
	coins     int
	inventory map[string]int
	received  map[string]int
	sent      map[string]int
}

// getInfo reads GET /api/info and checks its shape: every field present,
// numbers as JSON numbers, lists as lists (never null).
func (u *user) getInfo(t *testing.T) info {
	t.Helper()
	r := do(t, "GET", "/api/info", "", u.auth()...)
	wantStatus(t, r, 200, "info "+u.name)
	m := object(t, r)
	if len(m) != 3 {
		t.Fatalf("info: fields %v, want coins, inventory, coinHistory", keys(m))
	}
	in := info{coins: intOf(t, m["coins"], "coins"), inventory: map[string]int{}, received: map[string]int{}, sent: map[string]int{}}
	inv, ok := m["inventory"].([]any)
	if !ok {
		t.Fatalf("inventory is not a list: %s", r.body)
	}
	for _, e := range inv {
		it, ok := e.(map[string]any)
		name, _ := it["type"].(string)
		if !ok || len(it) != 2 || name == "" {
			t.Fatalf("inventory entry %v, want {type, quantity}", e)
		}
		if _, dup := in.inventory[name]; dup {
			t.Fatalf("inventory lists %s twice: %s", name, r.body)
		}
		in.inventory[name] = intOf(t, it["quantity"], "quantity")
	}
	hist, ok := m["coinHistory"].(map[string]any)
	if !ok || len(hist) != 2 {
		t.Fatalf("coinHistory %v, want {received, sent}", m["coinHistory"])
	}
	for _, side := range []struct {
		key, who string
		into     map[string]int
	}{{"received", "fromUser", in.received}, {"sent", "toUser", in.sent}} {
		list, ok := hist[side.key].([]any)
		if !ok {
			t.Fatalf("coinHistory.%s is not a list: %s", side.key, r.body)
		}
		for _, e := range list {
			it, ok := e.(map[string]any)
			name, _ := it[side.who].(string)
			if !ok || len(it) != 2 || name == "" {
				t.Fatalf("coinHistory.%s entry %v, want {%s, amount}", side.key, e, side.who)
			}
			if _, dup := side.into[name]; dup {
				t.Fatalf("coinHistory.%s lists %s twice (not grouped): %s", side.key, name, r.body)
			}
			side.into[name] = intOf(t, it["amount"], "amount")
		}
	}
	return in
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// send is POST /api/sendCoin.
func (u *user) send(to string, amount int, hdr ...string) (reply, error) {
	return call("POST", "/api/sendCoin", fmt.Sprintf(`{"toUser":%q,"amount":%d}`, to, amount), append(u.auth(), hdr...)...)
}

// mustSend sends and expects 200 {}.
func (u *user) mustSend(t *testing.T, to *user, amount int, hdr ...string) {
	t.Helper()
	r, err := u.send(to.name, amount, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON(t, r, 200, `{}`, fmt.Sprintf("send %d from %s to %s", amount, u.name, to.name))
}

// mustBuy buys with GET /api/buy/{item} and expects 200 {}.
func (u *user) mustBuy(t *testing.T, method, item string, hdr ...string) {
	t.Helper()
	wantJSON(t, do(t, method, "/api/buy/"+item, "", append(u.auth(), hdr...)...), 200, `{}`, method+" buy "+item)
}

// eventually polls cond until it holds or the deadline passes (for the
// asynchronous history only; everything else is read-your-writes).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 50 * time.Millisecond
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v; last state: %s", what, timeout, state)
		}
		time.Sleep(delay)
		delay = min(2*delay, 500*time.Millisecond)
	}
}
