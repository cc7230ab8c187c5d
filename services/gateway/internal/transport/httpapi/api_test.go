package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRoutesStatusAndShape(t *testing.T) {
	e := newEnv(t, envOption{})
	e.login("bob")
	tok := e.login("alice")
	auth := bearer(tok)

	steps := []struct {
		name, method, path, body string
		want                     string // exact JSON; "" when checked below
	}{
		{"new user info", "GET", "/api/info", "", `{"coins":1000,"inventory":[],"coinHistory":{"received":[],"sent":[]}}`},
		{"send coins", "POST", "/api/sendCoin", `{"toUser":"bob","amount":10}`, `{}`},
		{"buy by GET", "GET", "/api/buy/cup", "", `{}`},
		{"buy by POST", "POST", "/api/buy/pen", "", `{}`},
		{"buy again", "GET", "/api/buy/cup", "", `{}`},
		{"send again", "POST", "/api/sendCoin", `{"toUser":"bob","amount":15}`, `{}`},
		{"info after", "GET", "/api/info", "",
			`{"coins":925,"inventory":[{"type":"cup","quantity":2},{"type":"pen","quantity":1}],"coinHistory":{"received":[],"sent":[{"toUser":"bob","amount":25}]}}`},
		{"history", "GET", "/api/history?limit=5&cursor=c1", "",
			`{"entries":[{"transactionId":"tx-1","kind":"transfer_out","counterpart":"bob","amount":-25,"time":"2023-11-14T22:13:20.123Z"}],"nextCursor":"next-c1"}`},
	}
	for _, s := range steps {
		r := e.do(s.method, s.path, s.body, auth...)
		wantJSON(t, r, 200, s.want)
		if bytes.ContainsAny(r.body, " \n\t") {
			t.Errorf("%s: body not compact: %q", s.name, r.body)
		}
	}

	// The receiver sees the grouped total.
	wantJSON(t, e.do("GET", "/api/info", "", bearer(e.login("bob"))...), 200,
		`{"coins":1025,"inventory":[],"coinHistory":{"received":[{"fromUser":"alice","amount":25}],"sent":[]}}`)

	// The catalog is public; prices are numbers.
	r := e.do("GET", "/api/merch", "")
	var cat struct {
		Items []struct {
			Name  string
			Price json.Number
		}
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if r.status != 200 || dec.Decode(&cat) != nil || len(cat.Items) != 10 {
		t.Fatalf("merch: %d %s", r.status, r.body)
	}
	for _, it := range cat.Items {
		if p, _ := it.Price.Int64(); p != catalog[it.Name] {
			t.Errorf("price of %s = %s", it.Name, it.Price)
		}
	}

	// Legacy aliases.
	for _, c := range []struct{ path, body string }{
		{"/api/coins/send", `{"to_user":"bob","amount":5}`},
		{"/api/merch/buy/socks", ""},
	} {
		r := e.do("POST", c.path, c.body, auth...)
		var out map[string]any
		if r.status != 200 || json.Unmarshal(r.body, &out) != nil {
			t.Fatalf("%s: %d %s", c.path, r.status, r.body)
		}
		id, _ := out["transaction_id"].(string)
		if len(out) != 2 || id == "" || out["status"] != "COMPLETED" {
			t.Errorf("%s: body %s", c.path, r.body)
		}
	}
	wantJSON(t, e.do("GET", "/api/info", "", auth...), 200,
		`{"coins":910,"inventory":[{"type":"cup","quantity":2},{"type":"pen","quantity":1},{"type":"socks","quantity":1}],"coinHistory":{"received":[],"sent":[{"toUser":"bob","amount":30}]}}`)

	// The backends were asked for the caller, by id.
	e.w.mu.Lock()
	aliceID := e.w.users["alice"].id
	e.w.mu.Unlock()
	if id, _ := e.w.lastCaller.Load().(string); id == "" || id != aliceID {
		t.Errorf("backend call made for %q, want alice (%q)", id, aliceID)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, envOption{})
	e.login("bob")
	auth := bearer(e.login("alice"))
	cases := []struct {
		name, path, body, msg string
	}{
		{"amount as string", "/api/sendCoin", `{"toUser":"bob","amount":"10"}`, "amount must be an integer"},
		{"fraction", "/api/sendCoin", `{"toUser":"bob","amount":1.5}`, "amount must be an integer"},
		{"exponent", "/api/sendCoin", `{"toUser":"bob","amount":1e2}`, "amount must be an integer"},
		{"huge", "/api/sendCoin", `{"toUser":"bob","amount":1e100}`, "amount must be an integer"},
		{"out of int32", "/api/sendCoin", `{"toUser":"bob","amount":3000000000}`, "amount is out of range"},
		{"bool", "/api/sendCoin", `{"toUser":"bob","amount":true}`, "amount must be an integer"},
		{"zero", "/api/sendCoin", `{"toUser":"bob","amount":0}`, "amount must be at least 1"},
		{"negative", "/api/sendCoin", `{"toUser":"bob","amount":-5}`, "amount must be at least 1"},
		{"null amount", "/api/sendCoin", `{"toUser":"bob","amount":null}`, "amount must be at least 1"},
		{"missing amount", "/api/sendCoin", `{"toUser":"bob"}`, "amount must be at least 1"},
		{"missing toUser", "/api/sendCoin", `{"amount":5}`, "toUser is required"},
		{"toUser number", "/api/sendCoin", `{"toUser":5,"amount":5}`, "toUser must be a string"},
		{"malformed", "/api/sendCoin", `{"toUser":"bob",`, "invalid JSON body"},
		{"trailing data", "/api/sendCoin", `{"toUser":"bob","amount":1} {}`, "invalid JSON body"},
		{"duplicate field", "/api/sendCoin", `{"toUser":"bob","amount":1,"amount":2}`, "invalid JSON body"},
		{"array", "/api/sendCoin", `[1,2]`, "request body must be a JSON object"},
		{"string body", "/api/sendCoin", `"hi"`, "request body must be a JSON object"},
		{"null body", "/api/sendCoin", `null`, "request body must be a JSON object"},
		{"empty body", "/api/sendCoin", ``, "amount must be at least 1"},
		{"self", "/api/sendCoin", `{"toUser":"alice","amount":5}`, "cannot send coins to yourself"},
		{"unknown recipient", "/api/sendCoin", `{"toUser":"nobody","amount":5}`, "unknown recipient"},
		{"insufficient", "/api/sendCoin", `{"toUser":"bob","amount":1001}`, "insufficient funds"},
		{"legacy string amount", "/api/coins/send", `{"to_user":"bob","amount":"5"}`, "amount must be an integer"},
		{"legacy missing to_user", "/api/coins/send", `{"amount":5}`, "to_user is required"},
		{"unknown item", "/api/buy/nothing", ``, "unknown item"},
		{"legacy unknown item", "/api/merch/buy/nothing", ``, "unknown item"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", c.path, c.body, auth...), 400, c.msg)
		})
	}
	// Nothing moved.
	wantJSON(t, e.do("GET", "/api/info", "", auth...), 200, `{"coins":1000,"inventory":[],"coinHistory":{"received":[],"sent":[]}}`)

	// Insufficient funds for a purchase.
	for range 2 {
		wantJSON(t, e.do("GET", "/api/buy/pink-hoody", "", auth...), 200, `{}`)
	}
	wantError(t, e.do("GET", "/api/buy/pink-hoody", "", auth...), 400, "insufficient funds")

	authCases := []struct{ name, body, msg string }{
		{"empty", ``, "username is required"},
		{"empty object", `{}`, "username is required"},
		{"no password", `{"username":"carol"}`, "password is required"},
		{"too long", `{"username":"` + strings.Repeat("x", 65) + `","password":"p"}`, "username must be at most 64 characters: it has 65"},
		{"malformed", `{"username":`, "invalid JSON body"},
		{"username number", `{"username":1,"password":"p"}`, "username must be a string"},
	}
	for _, c := range authCases {
		t.Run("auth "+c.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/api/auth", c.body), 400, c.msg)
		})
	}
	wantError(t, e.do("POST", "/api/auth", `{"username":"alice","password":"wrong"}`), 401, "invalid username or password")
}

func TestErrorMapping(t *testing.T) {
	e := newEnv(t, envOption{})
	auth := bearer(e.login("alice"))
	cases := []struct {
		err    error
		status int
		msg    string
	}{
		{status.Error(codes.InvalidArgument, "bad thing"), 400, "bad thing"},
		{status.Error(codes.FailedPrecondition, "insufficient funds"), 400, "insufficient funds"},
		{status.Error(codes.NotFound, "unknown recipient"), 400, "unknown recipient"},
		{status.Error(codes.AlreadyExists, "already there"), 400, "already there"},
		{status.Error(codes.OutOfRange, "too far"), 400, "too far"},
		{status.Error(codes.Unauthenticated, "session expired"), 401, "session expired"},
		{status.Error(codes.ResourceExhausted, "bcrypt pool full"), 503, "service temporarily unavailable"},
		{status.Error(codes.Unavailable, "dial tcp 10.0.0.1:5432: connection refused"), 503, "service temporarily unavailable"},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), 503, "service temporarily unavailable"},
		{status.Error(codes.Aborted, "please retry"), 503, "service temporarily unavailable"},
		{status.Error(codes.Internal, `pq: relation "ledger" does not exist`), 500, "internal error"},
		{status.Error(codes.Unknown, "panic: boom"), 500, "internal error"},
		{status.Error(codes.PermissionDenied, "secret"), 500, "internal error"},
	}
	for _, c := range cases {
		t.Run(status.Code(c.err).String(), func(t *testing.T) {
			e.w.setFail(c.err)
			for _, r := range []reply{
				e.do("POST", "/api/sendCoin", `{"toUser":"bob","amount":1}`, auth...),
				e.do("GET", "/api/info", "", auth...),
				e.do("GET", "/api/merch", ""),
			} {
				wantError(t, r, c.status, c.msg)
				// A 503 passes: it says when to retry; nothing else does.
				want := ""
				if c.status == 503 {
					want = "1"
				}
				if got := r.resp.Header.Get("Retry-After"); got != want {
					t.Errorf("Retry-After %q, want %q", got, want)
				}
			}
		})
	}
}

func TestInt32Overflow(t *testing.T) {
	e := newEnv(t, envOption{})
	auth := bearer(e.login("alice"))
	e.w.mu.Lock()
	e.w.users["alice"].balance = 1 << 40
	e.w.mu.Unlock()
	wantError(t, e.do("GET", "/api/info", "", auth...), 500, "internal error")
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, envOption{})
	auth := bearer(e.login("alice"))
	big := `{"toUser":"` + strings.Repeat("b", 70<<10) + `","amount":1}`
	wantError(t, e.do("POST", "/api/sendCoin", big, auth...), 413, "request body too large")
	wantError(t, e.do("POST", "/api/auth", big), 413, "request body too large")

	// Without a Content-Length (chunked), the limit still holds.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/sendCoin", struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Authorization", auth[1])
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
		t.Fatalf("chunked: status %d (content length %d)", resp.StatusCode, req.ContentLength)
	}

	// Just under the limit is decoded (and refused for its content).
	ok := `{"toUser":"bob","amount":1,"pad":"` + strings.Repeat("x", 60<<10) + `"}`
	wantError(t, e.do("POST", "/api/sendCoin", ok, auth...), 400, "unknown recipient")
}

func TestRouting(t *testing.T) {
	e := newEnv(t, envOption{})
	auth := bearer(e.login("alice"))
	wantError(t, e.do("GET", "/api/nope", ""), 404, "not found")
	wantError(t, e.do("GET", "/api/nope", "", auth...), 404, "not found")
	wantError(t, e.do("GET", "/", ""), 404, "not found")
	wantError(t, e.do("DELETE", "/api/info", "", auth...), 405, "method not allowed")
	wantError(t, e.do("POST", "/api/info", "", auth...), 405, "method not allowed")
	wantError(t, e.do("GET", "/api/sendCoin", "", auth...), 405, "method not allowed")
	wantError(t, e.do("GET", "/api/auth", ""), 405, "method not allowed")
	wantError(t, e.do("POST", "/healthz", ""), 405, "method not allowed")
	// A form POST does not fall back to the GET route.
	r := e.do("POST", "/api/info", "a=b", append(auth, "Content-Type", "application/x-www-form-urlencoded")...)
	if r.status != 405 {
		t.Fatalf("form POST: %d %s", r.status, r.body)
	}
	// Path parameters are unescaped.
	wantError(t, e.do("GET", "/api/buy/no%20such", "", auth...), 400, "unknown item")
	// Bytes that are not UTF-8 are bad input, not an internal error.
	wantError(t, e.do("GET", "/api/buy/%FF%FE", "", auth...), 400, "unknown item")
	wantError(t, e.do("POST", "/api/merch/buy/%C3", "", auth...), 400, "unknown item")
	wantError(t, e.do("GET", "/api/history?cursor=%FF", "", auth...), 400, "invalid cursor")
	// Query checks of the history.
	wantError(t, e.do("GET", "/api/history?limit=abc", "", auth...), 400, "limit must be an integer between 1 and 100")
	wantError(t, e.do("GET", "/api/history?limit=1000", "", auth...), 400, "limit must be an integer between 1 and 100")
	wantError(t, e.do("GET", "/api/history?limit=1&limit=2", "", auth...), 400, "query parameter limit given more than once")
	if r := e.do("GET", "/api/history?other=1", "", auth...); r.status != 200 {
		t.Fatalf("history with an unknown parameter: %d %s", r.status, r.body)
	}
}

func TestAdminEndpoints(t *testing.T) {
	e := newEnv(t, envOption{})
	auth := bearer(e.login("alice"))
	e.do("GET", "/api/buy/cup", "", auth...)
	e.do("GET", "/api/info", "", auth...)
	e.do("GET", "/api/nope", "")
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := e.do("GET", p, ""); r.status != 200 {
			t.Fatalf("%s: %d %s", p, r.status, r.body)
		}
	}
	m := string(e.do("GET", "/metrics", "").body)
	for _, want := range []string{
		`http_requests_total{code="200",route="/api/buy/{item}"} 1`,
		`http_requests_total{code="200",route="/api/info"} 1`,
		`http_requests_total{code="200",route="/api/auth"} 1`,
		`http_requests_total{code="404",route="unmatched"} 1`,
		`http_request_duration_seconds_count{route="/api/info"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Not ready while the keys are not loaded.
	e2 := newEnv(t, envOption{noKeys: true})
	wantJSON(t, e2.do("GET", "/readyz", ""), 503, `{"status":"unavailable","failed":["token-keys"]}`)
	if r := e2.do("GET", "/healthz", ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
}

func TestConcurrentRequests(t *testing.T) {
	e := newEnv(t, envOption{})
	e.login("bob")
	auth := bearer(e.login("alice"))
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			r, err := e.try("POST", "/api/sendCoin", fmt.Sprintf(`{"toUser":"bob","amount":%d}`, i+1), auth...)
			if err != nil {
				errs <- err
				return
			}
			if r.status != 200 {
				errs <- fmt.Errorf("%d %s", r.status, r.body)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	wantJSON(t, e.do("GET", "/api/info", "", auth...), 200,
		`{"coins":790,"inventory":[],"coinHistory":{"received":[],"sent":[{"toUser":"bob","amount":210}]}}`)
}

// wait receives from ch or fails the test after a generous deadline.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// A client that goes away cancels the backend call it was waiting for: the
// request's context reaches the backends.
func TestClientGoneCancelsBackendCall(t *testing.T) {
	e := newEnv(t, envOption{})
	tok := e.login("alice")
	s := newStall(1)
	e.w.stall.Store(s)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/info", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	done := make(chan error, 1)
	go func() {
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	wait(t, s.entered, "the backend call")
	cancel()
	if err := wait(t, s.ended, "the backend call to end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("backend call ended with %v, want context.Canceled", err)
	}
	if err := wait(t, done, "the client"); !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
}
