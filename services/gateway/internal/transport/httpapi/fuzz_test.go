package httpapi_test

// Fuzz targets for every decoder at the HTTP edge. The decoder targets call
// the Marshaler directly; the others send whole HTTP requests, parsed by
// net/http's own request reader as the server would, through the real
// handler over the fake backends. Seed corpora: testdata/fuzz/<FuzzName>/.
// scripts/fuzz.sh runs each target for a bounded time.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	shopv1 "github.com/merchshop/merchshop/gen/shop/v1"
	"github.com/merchshop/merchshop/services/gateway/internal/transport/httpapi"
)

// decodeMessage reports whether msg is one of the decoder's own messages
// for a body of md: protojson's wording must never come through.
func decodeMessage(md protoreflect.MessageDescriptor, msg string) bool {
	if msg == "invalid JSON body" || msg == "request body must be a JSON object" {
		return true
	}
	fields := md.Fields()
	for i := range fields.Len() {
		name := fields.Get(i).JSONName()
		for _, suffix := range []string{" must be a string", " must be an integer", " is out of range"} {
			if msg == name+suffix {
				return true
			}
		}
	}
	return false
}

// checkDecode decodes data into msg with the gateway's Marshaler and
// checks: no panic, EOF only for a blank body, errors in our own words, and
// an accepted body is one JSON object whose string and integer fields
// decoded to exactly the values it holds.
func checkDecode(t *testing.T, data []byte, msg proto.Message) {
	m := httpapi.NewMarshaler()
	err := m.NewDecoder(strings.NewReader(string(data))).Decode(msg)
	if errors.Is(err, io.EOF) {
		if strings.TrimSpace(string(data)) != "" {
			t.Fatalf("EOF for a non-empty body %q", data)
		}
		return
	}
	md := msg.ProtoReflect().Descriptor()
	if err != nil {
		if s := err.Error(); !decodeMessage(md, s) || !utf8.ValidString(s) || strings.ContainsRune(s, '\u00a0') {
			t.Fatalf("body %q: foreign error message %q", data, s)
		}
		return
	}
	// UseNumber: a number out of float64's range (1e700) is valid JSON,
	// and in a field the request does not have it is rightly ignored.
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&obj) != nil || obj == nil || !errors.Is(dec.Decode(&struct{}{}), io.EOF) {
		t.Fatalf("accepted a body that is not a JSON object: %q", data)
	}
	r := msg.ProtoReflect()
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		v, ok := obj[fd.JSONName()]
		if !ok || v == nil {
			continue
		}
		switch fd.Kind() {
		case protoreflect.Int32Kind:
			n, isNum := v.(json.Number)
			f, err := strconv.ParseFloat(string(n), 64)
			if !isNum || err != nil || f != float64(r.Get(fd).Int()) {
				t.Fatalf("body %q: %s %v decoded as %d", data, fd.JSONName(), v, r.Get(fd).Int())
			}
		case protoreflect.StringKind:
			s, isStr := v.(string)
			if !isStr || s != r.Get(fd).String() {
				t.Fatalf("body %q: %s %q decoded as %q", data, fd.JSONName(), v, r.Get(fd).String())
			}
		}
	}
}

// FuzzDecodeSendCoin feeds arbitrary bodies to the strict decoder as
// POST /api/sendCoin bodies.
func FuzzDecodeSendCoin(f *testing.F) {
	for _, s := range []string{
		`{"toUser":"bob","amount":10}`, `{"toUser":"bob","amount":"10"}`, `{"amount":1.5}`,
		`{"amount":1e100}`, `[]`, `{`, ``, `{"to_user":"x","amount":-2147483648}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data, &shopv1.SendCoinRequest{})
	})
}

// decodeTargets are the request messages with a JSON body.
var decodeTargets = []func() proto.Message{
	func() proto.Message { return &shopv1.AuthRequest{} },
	func() proto.Message { return &shopv1.LegacySendCoinsRequest{} },
	func() proto.Message { return &shopv1.SendCoinRequest{} },
}

// FuzzDecodeBodies is FuzzDecodeSendCoin for every body the API takes:
// which picks POST /api/auth, /api/coins/send or /api/sendCoin.
func FuzzDecodeBodies(f *testing.F) {
	for _, s := range []string{
		`{"username":"alice","password":"pw"}`, `{"username":1,"password":"pw"}`, `{"username":"a","username":"b"}`,
		`{"Username":"alice"}`, `{"username":"\ud800"}`, `{"to_user":"bob","amount":5}`, `{"toUser":"bob","amount":5}`,
		`{"to_user":["bob"]}`, `{"amount":2147483648}`, `null`, `"x"`,
	} {
		for i := range decodeTargets {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		checkDecode(t, data, decodeTargets[int(which)%len(decodeTargets)]())
	})
}

// fuzzServer is the gateway handler over the fake backends, with users
// alice (whose token the requests carry) and bob.
type fuzzServer struct {
	h     http.Handler
	w     *world
	token string

	mu      sync.Mutex
	refresh string // alice's current refresh token
}

func newFuzzServer(f *testing.F, opt envOption) *fuzzServer {
	e := newEnv(f, opt)
	e.login("bob")
	r := e.do("POST", "/api/auth", `{"username":"alice","password":"pw-alice"}`)
	var out struct{ Token string }
	if r.status != 200 || json.Unmarshal(r.body, &out) != nil || out.Token == "" {
		f.Fatalf("login: %d %s", r.status, r.body)
	}
	s := &fuzzServer{h: e.srv.Config.Handler, w: e.w, token: out.Token}
	for _, c := range r.resp.Cookies() {
		if c.Name == "refresh_token" {
			s.refresh = c.Value
		}
	}
	if s.refresh == "" {
		f.Fatal("no refresh cookie")
	}
	return s
}

// serve parses raw as the server would and answers it; ok is false when the
// server would refuse the request before the handler.
func (s *fuzzServer) serve(raw string) (req *http.Request, rec *httptest.ResponseRecorder, ok bool) {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil || req.Host == "" {
		return nil, nil, false
	}
	req.RemoteAddr = "192.0.2.1:40000"
	req = req.WithContext(context.Background())
	rec = httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return req, rec, true
}

// checkAnswer checks what every answer must be: never a server error, JSON,
// and every error exactly {"errors":"<non-empty message>"}.
func checkAnswer(t *testing.T, raw string, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	code := rec.Code
	ok := false
	for _, a := range allowed {
		ok = ok || code == a
	}
	if !ok {
		t.Fatalf("request %q: status %d (%s), want one of %v", raw, code, rec.Body.Bytes(), allowed)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("request %q: Content-Type %q", raw, ct)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("request %q: body %q is not a JSON object", raw, rec.Body.Bytes())
	}
	if code == http.StatusOK {
		return
	}
	var msg string
	if len(body) != 1 || json.Unmarshal(body["errors"], &msg) != nil || msg == "" {
		t.Fatalf("request %q: error body %s", raw, rec.Body.Bytes())
	}
}

func (s *fuzzServer) moved() int64 { return s.w.transfers.Load() + s.w.buys.Load() }

var bodyRoutes = []string{
	"/api/auth", "/api/sendCoin", "/api/coins/send", "/api/buy/pen", "/api/merch/buy/pen", "/api/auth/refresh",
}

// FuzzRequestBody posts arbitrary bodies (with arbitrary Content-Length
// and Content-Type) to every POST route: never a 5xx, money moves exactly
// when the answer is 200.
func FuzzRequestBody(f *testing.F) {
	for _, s := range []string{
		`{"toUser":"bob","amount":1}`, `{"to_user":"bob","amount":1}`, `{"username":"carol","password":"pw"}`,
		`{"toUser":"alice","amount":1}`, `{"toUser":"bob","amount":0}`, `{"toUser":"bob","amount":100000}`,
		`{"toUser":"nobody","amount":1}`, `{}`, ``, `{"amount":1}garbage`,
	} {
		for i := range bodyRoutes {
			f.Add(uint8(i), "application/json", s)
		}
	}
	f.Add(uint8(0), "text/plain", `username=a&password=b`)
	s := newFuzzServer(f, envOption{})
	f.Fuzz(func(t *testing.T, route uint8, contentType, body string) {
		if strings.ContainsAny(contentType, "\r\n") {
			return
		}
		path := bodyRoutes[int(route)%len(bodyRoutes)]
		raw := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
			path, s.token, contentType, len(body), body)
		before := s.moved()
		_, rec, ok := s.serve(raw)
		if !ok {
			return
		}
		checkAnswer(t, raw, rec, 200, 400, 401, 413)
		if moved := s.moved() - before; (moved != 0) != (rec.Code == 200 && path != "/api/auth" && path != "/api/auth/refresh") {
			t.Fatalf("request %q: answered %d, %d moves of money", raw, rec.Code, moved)
		}
	})
}

// FuzzPathItem buys arbitrary path items (GET /api/buy/{item}, POST
// /api/merch/buy/{name}): never a 5xx; a 200 only for a catalog item, and
// then exactly one purchase.
func FuzzPathItem(f *testing.F) {
	for _, s := range []string{
		"pen", "p%65n", "pink-hoody", "unknown", "", "pen/extra", "pen%2Fx", "%00", "%ff", "pen?x=1", "pen#x",
		"..%2F..%2Fadmin", "%E2%82%AC", strings.Repeat("a", 300), "pen%20", "a;b", "%", "%zz",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	s := newFuzzServer(f, envOption{})
	f.Fuzz(func(t *testing.T, item string, legacy bool) {
		method, prefix := "GET", "/api/buy/"
		if legacy {
			method, prefix = "POST", "/api/merch/buy/"
		}
		raw := fmt.Sprintf("%s %s%s HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer %s\r\n\r\n", method, prefix, item, s.token)
		before := s.moved()
		req, rec, ok := s.serve(raw)
		if !ok {
			return
		}
		checkAnswer(t, raw, rec, 200, 400, 401, 404, 405)
		moved := s.moved() - before
		if rec.Code != 200 {
			if moved != 0 {
				t.Fatalf("request %q: answered %d but bought", raw, rec.Code)
			}
			return
		}
		name, err := url.PathUnescape(strings.TrimPrefix(req.URL.EscapedPath(), prefix))
		if _, known := catalog[name]; err != nil || !known || moved != 1 {
			t.Fatalf("request %q: 200 for item %q (%v), %d purchases", raw, name, err, moved)
		}
	})
}

// FuzzAuthorization sends arbitrary Authorization headers ("{{token}}"
// stands for alice's valid token): 200 only for "Bearer <that token>"
// (scheme in any case, surrounding spaces), 401 otherwise, never 5xx.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{
		"Bearer {{token}}", "bearer {{token}}", "BEARER  {{token}} ", "Bearer\t{{token}}", "Bearer {{token}} x",
		"Bearer {{token}}x", "Basic {{token}}", "{{token}}", "Bearer", "Bearer ", "", "Bearer a.b.c",
		"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LTEifQ.", "Bearer {{token}}{{token}}",
	} {
		f.Add(s)
	}
	s := newFuzzServer(f, envOption{})
	f.Fuzz(func(t *testing.T, value string) {
		value = strings.ReplaceAll(value, "{{token}}", s.token)
		if strings.ContainsAny(value, "\r\n") {
			return
		}
		raw := "GET /api/info HTTP/1.1\r\nHost: shop\r\nAuthorization: " + value + "\r\n\r\n"
		req, rec, ok := s.serve(raw)
		if !ok {
			return
		}
		checkAnswer(t, raw, rec, 200, 401)
		if rec.Code == 200 {
			h := strings.TrimSpace(req.Header.Get("Authorization"))
			if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") || strings.TrimSpace(h[7:]) != s.token {
				t.Fatalf("accepted Authorization %q", h)
			}
		}
	})
}

// FuzzRefreshCookie sends arbitrary Cookie headers to the refresh and
// logout routes ("{{refresh}}" stands for alice's current refresh token):
// refresh answers 200 or 401, logout 200, never 5xx.
func FuzzRefreshCookie(f *testing.F) {
	for _, s := range []string{
		"refresh_token={{refresh}}", "refresh_token=\"{{refresh}}\"", "a=b; refresh_token={{refresh}}",
		"refresh_token=", "refresh_token=x; refresh_token={{refresh}}", "refresh_token=\xff", "=;;=", "",
		"refresh_token=" + strings.Repeat("x", 5000),
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	s := newFuzzServer(f, envOption{})
	f.Fuzz(func(t *testing.T, cookie string, logout bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		cookie = strings.ReplaceAll(cookie, "{{refresh}}", s.refresh)
		if strings.ContainsAny(cookie, "\r\n") {
			return
		}
		line, allowed := "POST /api/auth/refresh", []int{200, 401}
		if logout {
			line, allowed = "DELETE /api/auth/logout", []int{200}
		}
		raw := line + " HTTP/1.1\r\nHost: shop\r\nCookie: " + cookie + "\r\n\r\n"
		_, rec, ok := s.serve(raw)
		if !ok {
			return
		}
		checkAnswer(t, raw, rec, allowed...)
		if rec.Code == 200 && !logout {
			for _, c := range rec.Result().Cookies() {
				if c.Name == "refresh_token" && c.Value != "" {
					s.refresh = c.Value // rotated: keep the fuzzer on the success path
				}
			}
		}
	})
}

// memReplay is an in-memory ReplayStore.
type memReplay struct {
	mu sync.Mutex
	m  map[string]struct {
		code int
		body []byte
	}
}

func (r *memReplay) Get(_ context.Context, key string) (int, []byte, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[key]
	return v.code, v.body, ok, nil
}

func (r *memReplay) Put(_ context.Context, key string, code int, body []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[key]; !ok {
		r.m[key] = struct {
			code int
			body []byte
		}{code, append([]byte(nil), body...)}
	}
	return nil
}

// FuzzIdempotencyReplay sends a transfer twice with an arbitrary
// Idempotency-Key: never a 5xx, a key over 200 bytes is refused, and the
// second answer is the first one again without moving money.
func FuzzIdempotencyReplay(f *testing.F) {
	for _, s := range []string{
		"k1", "", " ", "\t", strings.Repeat("k", 64), strings.Repeat("k", 65), strings.Repeat("k", 200),
		strings.Repeat("k", 201), "caf\xc3\xa9", "\xff\xfe", "sha256-0000", "a:b:c", "\x7f",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	replay := &memReplay{m: map[string]struct {
		code int
		body []byte
	}{}}
	s := newFuzzServer(f, envOption{cfg: func(c *httpapi.Config) { c.Replay = replay }})
	f.Fuzz(func(t *testing.T, key string, legacy bool) {
		if strings.ContainsAny(key, "\r\n") {
			return
		}
		path, body := "/api/sendCoin", `{"toUser":"bob","amount":1}`
		if legacy {
			path, body = "/api/coins/send", `{"to_user":"bob","amount":1}`
		}
		raw := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer %s\r\nIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s",
			path, s.token, key, len(body), body)
		req, first, ok := s.serve(raw)
		if !ok {
			return
		}
		checkAnswer(t, raw, first, 200, 400)
		sent := req.Header.Get("Idempotency-Key")
		if (len(sent) > httpapi.MaxIdempotencyKeyLen) != (first.Code == 400 && strings.Contains(first.Body.String(), "idempotency key")) {
			t.Fatalf("key of %d bytes answered %d %s", len(sent), first.Code, first.Body.Bytes())
		}
		if sent == "" {
			return
		}
		before := s.moved()
		_, again, _ := s.serve(raw)
		if again.Code != first.Code || again.Body.String() != first.Body.String() {
			t.Fatalf("key %q: replay answered %d %s, first %d %s", key, again.Code, again.Body.Bytes(), first.Code, first.Body.Bytes())
		}
		if s.moved() != before {
			t.Fatalf("key %q: the replay moved money", key)
		}
	})
}

// FuzzHistoryQuery sends arbitrary queries to GET /api/history: 200 or
// 400, never 5xx.
func FuzzHistoryQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10", "limit=0", "limit=101", "limit=-1", "limit=1e3", "limit=10&limit=20", "cursor=abc",
		"cursor=%ff", "cursor=" + strings.Repeat("c", 600), "limit=2147483648", "limit=%00", "x=y&limit=",
		"limit=%2B5", "cursor=a&cursor=b", "%zz",
	} {
		f.Add(s)
	}
	s := newFuzzServer(f, envOption{})
	f.Fuzz(func(t *testing.T, query string) {
		raw := "GET /api/history?" + query + " HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer " + s.token + "\r\n\r\n"
		_, rec, ok := s.serve(raw)
		if !ok {
			return
		}
		checkAnswer(t, raw, rec, 200, 400)
	})
}

var addrKey = regexp.MustCompile(`^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]+/64)$`)

// FuzzClientAddr parses arbitrary peers and X-Forwarded-For headers: the
// key is always an IPv4 address or an IPv6 /64 (or empty for a peer that is
// no address); without trusted proxies the header is never read, and a
// peer that is not trusted is always its own key.
func FuzzClientAddr(f *testing.F) {
	for _, c := range [][2]string{
		{"10.0.0.1:5000", "203.0.113.9"}, {"10.0.0.1:5000", "203.0.113.9, 10.0.0.2"}, {"192.0.2.1:1", "203.0.113.9"},
		{"[::1]:80", "[2001:db8::1]:443, garbage"}, {"[fe80::1%eth0]:1", ""}, {"x", "y"}, {"10.0.0.1:1", ",,,"},
		{"10.0.0.1:1", strings.Repeat("10.0.0.1,", 100)}, {"[::ffff:10.0.0.1]:1", "::ffff:1.2.3.4"},
	} {
		f.Add(c[0], c[1])
	}
	trusted, err := httpapi.ParseTrustedProxies([]string{"10.0.0.0/8", "::1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest(http.MethodPost, "/api/auth", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		with, without := httpapi.ClientAddr(r, trusted), httpapi.ClientAddr(r, nil)
		r.Header.Del("X-Forwarded-For")
		peer := httpapi.ClientAddr(r, nil)
		if without != peer {
			t.Fatalf("untrusted X-Forwarded-For %q changed the key: %q vs %q", xff, without, peer)
		}
		if peer == "" {
			if with != "" {
				t.Fatalf("peer %q is no address, yet key %q", remote, with)
			}
			return
		}
		for _, k := range []string{with, peer} {
			if !addrKey.MatchString(k) {
				t.Fatalf("peer %q xff %q: key %q", remote, xff, k)
			}
		}
		if !strings.HasPrefix(peer, "10.") && peer != "::/64" && with != peer {
			t.Fatalf("untrusted peer %q: key %q from X-Forwarded-For %q", remote, with, xff)
		}
	})
}
