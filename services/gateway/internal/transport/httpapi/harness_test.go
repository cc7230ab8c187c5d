package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	infov1 "github.com/merchshop/merchshop/gen/info/v1"
	merchv1 "github.com/merchshop/merchshop/gen/merch/v1"
	"github.com/merchshop/merchshop/pkg/httpserver"
	"github.com/merchshop/merchshop/pkg/metrics"
	"github.com/merchshop/merchshop/services/gateway/internal/app"
	"github.com/merchshop/merchshop/services/gateway/internal/token"
	"github.com/merchshop/merchshop/services/gateway/internal/transport/httpapi"
)

// env is a gateway handler over fake backends, served by httptest.
type env struct {
	t        testing.TB
	w        *world
	srv      *httptest.Server
	verifier *token.Verifier
	reg      *metrics.Registry
}

type envOption struct {
	noKeys bool // don't load the verification keys
	// tokenRefresh is the verifier's MinRefreshInterval (default 1 h).
	tokenRefresh time.Duration
	cfg          func(*httpapi.Config)
	world        func(*world)
}

func newEnv(t testing.TB, opt envOption) *env {
	t.Helper()
	w := newWorld()
	if opt.world != nil {
		opt.world(w)
	}
	conn := backendConns(t, w)
	log := slog.New(slog.DiscardHandler)
	authClient := authv1.NewAuthServiceClient(conn)
	if opt.tokenRefresh == 0 {
		opt.tokenRefresh = time.Hour
	}
	v := token.New(authClient, log, token.Config{MinRefreshInterval: opt.tokenRefresh})
	ctx := context.Background()
	if !opt.noKeys {
		if err := v.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reg := metrics.New()
	cfg := httpapi.Config{
		Shop: app.New(app.Backends{
			Auth:  authClient,
			Coins: coinsv1.NewCoinsServiceClient(conn),
			Merch: merchv1.NewMerchServiceClient(conn),
			Info:  infov1.NewInfoServiceClient(conn),
		}, log),
		Verifier: v,
		Ready:    map[string]httpserver.Check{"token-keys": v.Check},
		Metrics:  reg,
		Log:      log,
	}
	if opt.cfg != nil {
		opt.cfg(&cfg)
	}
	h, err := httpapi.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, w: w, srv: srv, verifier: v, reg: reg}
}

type reply struct {
	status int
	body   []byte
	resp   *http.Response
}

// do sends a request; hdr holds extra headers as name, value pairs.
func (e *env) do(method, path, body string, hdr ...string) reply {
	e.t.Helper()
	r, err := e.try(method, path, body, hdr...)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// try is do for other goroutines: it returns transport errors.
func (e *env) try(method, path, body string, hdr ...string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		return reply{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, body: b, resp: resp}, nil
}

// login authenticates name through the API and returns the access token.
func (e *env) login(name string) string {
	e.t.Helper()
	r := e.do("POST", "/api/auth", `{"username":"`+name+`","password":"pw-`+name+`"}`)
	if r.status != 200 {
		e.t.Fatalf("login %s: %d %s", name, r.status, r.body)
	}
	var out struct{ Token string }
	if err := json.Unmarshal(r.body, &out); err != nil || out.Token == "" {
		e.t.Fatalf("login %s: bad body %s", name, r.body)
	}
	return out.Token
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return v
}

// wantJSON checks status and that the body equals want semantically.
func wantJSON(t *testing.T, r reply, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	got, exp := decodeJSON(t, r.body), decodeJSON(t, []byte(want))
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("body %s, want %s", r.body, want)
	}
}

// wantError checks an error answer: status and exactly {"errors":msg}.
func wantError(t *testing.T, r reply, status int, msg string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"errors": msg})
	wantJSON(t, r, status, string(b))
}
