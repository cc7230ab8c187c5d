package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/merchshop/merchshop/tests/load/internal/results"
	"github.com/merchshop/merchshop/tests/load/internal/users"
)

// shop is a stand-in gateway that checks every request the way the real
// one would see it and counts them by path.
type shop struct {
	t      *testing.T
	tokens map[string]users.User // "Bearer <token>" -> user
	names  map[string]users.User
	fail   func(n int64) bool // answer request n (from 1) with a 500
	block  bool               // hold every request until the client gives up
	onReq  func(n int64)

	n     atomic.Int64
	conns atomic.Int64
	mu    sync.Mutex
	paths map[string]int64
}

func newShop(t *testing.T, us []users.User) *shop {
	s := &shop{t: t, tokens: map[string]users.User{}, names: map[string]users.User{}, paths: map[string]int64{}}
	for _, u := range us {
		s.tokens["Bearer "+u.Token] = u
		s.names[u.Name] = u
	}
	return s
}

func (s *shop) start() *httptest.Server {
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	srv.Start()
	s.t.Cleanup(srv.Close)
	return srv
}

func (s *shop) count(path string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[path]
}

func (s *shop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.n.Add(1)
	s.mu.Lock()
	s.paths[r.URL.Path]++
	s.mu.Unlock()
	if s.onReq != nil {
		s.onReq(n)
	}
	if s.block {
		<-r.Context().Done()
		return
	}
	if err := s.check(r); err != nil {
		s.t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.fail != nil && s.fail(n) {
		http.Error(w, "failing on purpose", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write([]byte(`{"coins":1000,"inventory":[],"coinHistory":{"received":[],"sent":[]}}`))
}

// check is what every request must look like (tests/load/README.md).
func (s *shop) check(r *http.Request) error {
	h := r.Header
	if h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != userAgent {
		return fmt.Errorf("headers %v", h)
	}
	if h.Get("Accept-Encoding") != "" || h.Get("Idempotency-Key") != "" {
		return fmt.Errorf("unexpected headers %v", h)
	}
	var body map[string]any
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return fmt.Errorf("body: %w", err)
		}
	}
	if r.URL.Path == "/api/auth" {
		u, ok := s.names[fmt.Sprint(body["username"])]
		if r.Method != http.MethodPost || h.Get("Authorization") != "" || !ok || body["password"] != u.Password || len(body) != 2 {
			return fmt.Errorf("login %v with Authorization %q", body, h.Get("Authorization"))
		}
		return nil
	}
	from, ok := s.tokens[h.Get("Authorization")]
	if !ok {
		return fmt.Errorf("authorization %q", h.Get("Authorization"))
	}
	switch r.URL.Path {
	case "/api/info", "/api/buy/pen", "/api/buy/socks":
		if r.Method != http.MethodGet || r.ContentLength > 0 {
			return fmt.Errorf("method %s, length %d", r.Method, r.ContentLength)
		}
	case "/api/sendCoin":
		to, ok := s.names[fmt.Sprint(body["toUser"])]
		if r.Method != http.MethodPost || !ok || to.Name == from.Name || body["amount"] != 1.0 || len(body) != 2 {
			return fmt.Errorf("transfer %v from %s", body, from.Name)
		}
	default:
		return fmt.Errorf("unknown path")
	}
	return nil
}

func baseConfig(url, profile string, rate int, d time.Duration) config {
	return config{base: url, profile: profile, rate: rate, duration: d, maxWorkers: 100, timeout: 10 * time.Second,
		// Generous for a test machine busy with other tests: the lag and
		// latency figures of a test run are not what is under test.
		// (CI runs this with -race beside every other package's tests.)
		maxLag: 5 * time.Second, sli: results.SLI{P99Ms: 5000, Success: 0.9999}}
}

func writeUsers(t *testing.T, us []users.User) string {
	var b bytes.Buffer
	for _, u := range us {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", u.Name, u.Password, u.Token)
	}
	path := filepath.Join(t.TempDir(), "users.tsv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestShootOpenModel runs each profile at 200 req/s for 2 s against the
// stand-in and checks the rate, the counts on both sides and the summary.
func TestShootOpenModel(t *testing.T) {
	us := testUsers(50)
	usersFile := writeUsers(t, us)
	for _, profile := range []string{"mixed", "info", "auth"} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			sh := newShop(t, us)
			srv := sh.start()
			summaryFile := filepath.Join(t.TempDir(), "run.json")
			var log bytes.Buffer
			code := shoot(context.Background(), baseConfig(srv.URL, profile, 200, 2*time.Second), usersFile, summaryFile, &log)
			t.Log(log.String())
			if code != exitMet {
				t.Fatalf("exit status %d, want %d", code, exitMet)
			}
			s, err := results.ReadSummary(summaryFile)
			if err != nil {
				t.Fatal(err)
			}
			if s.Wanted != 400 || s.Requests != 400 || s.OK != 400 || s.Failed != 0 || s.Dropped != 0 || s.Interrupted {
				t.Fatalf("summary %+v", s)
			}
			// The schedule is 2 s; a busy machine stretches the last answers.
			if s.AchievedRPS < 130 || s.AchievedRPS > 201 || s.ElapsedS < 1.99 {
				t.Errorf("achieved %.1f req/s over %.2f s, want about 200 over 2 s", s.AchievedRPS, s.ElapsedS)
			}
			if sh.n.Load() != 400 || s.Statuses["200"] != 400 || !s.SLI.Met || s.Profile != profile || s.TargetRPS != 200 || s.GeneratorCPUS <= 0 {
				t.Errorf("server saw %d requests; summary %+v", sh.n.Load(), s)
			}
			// Per endpoint, the generator's counts are the server's.
			paths := map[string][]string{"info": {"/api/info"}, "buy": {"/api/buy/pen", "/api/buy/socks"},
				"send": {"/api/sendCoin"}, "auth": {"/api/auth"}}
			var sum int64
			for name, e := range s.Endpoints {
				var seen int64
				for _, p := range paths[name] {
					seen += sh.count(p)
				}
				if seen != e.Requests || e.OK != e.Requests || e.Latency.P99 <= 0 || e.Latency.P50 > e.Latency.P99 {
					t.Errorf("%s: server saw %d, summary %+v", name, seen, e)
				}
				sum += e.Requests
			}
			if want := map[string]int{"mixed": 3, "info": 1, "auth": 1}[profile]; len(s.Endpoints) != want || sum != 400 {
				t.Errorf("endpoints %v", s.Endpoints)
			}
			// Keep-alive: a handful of connections carried the 400 requests.
			if c := sh.conns.Load(); c > s.PeakInFlight+5 {
				t.Errorf("%d connections for 400 requests (peak in flight %d)", c, s.PeakInFlight)
			}
		})
	}
}

// TestShootDropsWhenWorkersAreBusy holds every request until it times out
// with a single worker: the requests due meanwhile cannot start on time and
// must be dropped (never sent), and the SLI is missed.
func TestShootDropsWhenWorkersAreBusy(t *testing.T) {
	us := testUsers(10)
	sh := newShop(t, us)
	sh.block = true
	srv := sh.start()
	cfg := baseConfig(srv.URL, "info", 100, time.Second)
	cfg.maxWorkers, cfg.timeout, cfg.maxLag = 1, 200*time.Millisecond, 50*time.Millisecond
	summaryFile := filepath.Join(t.TempDir(), "run.json")
	var log bytes.Buffer
	code := shoot(context.Background(), cfg, writeUsers(t, us), summaryFile, &log)
	t.Log(log.String())
	if code != exitMissed {
		t.Fatalf("exit status %d, want %d", code, exitMissed)
	}
	s, err := results.ReadSummary(summaryFile)
	if err != nil {
		t.Fatal(err)
	}
	// About one request in 200 ms is sent, the twenty due meanwhile dropped.
	if s.Wanted != 100 || s.Requests+s.Dropped != 100 || s.Requests < 1 || s.Dropped < 50 || s.OK != 0 || s.Failed != s.Requests {
		t.Fatalf("summary %+v", s)
	}
	if sh.n.Load() != s.Requests {
		t.Errorf("the server saw %d requests, the summary says %d were sent", sh.n.Load(), s.Requests)
	}
	if s.Endpoints["info"].Dropped != s.Dropped || s.Statuses["error"] != s.Requests || s.PeakInFlight < 1 || s.PeakInFlight > 2 || s.SLI.Met {
		t.Errorf("summary %+v", s)
	}
	if !strings.Contains(strings.Join(s.SLI.Missed, " "), "dropped") {
		t.Errorf("missed %q", s.SLI.Missed)
	}
}

// TestShootFailuresMissTheSLI answers two requests in 400 with a 500.
func TestShootFailuresMissTheSLI(t *testing.T) {
	us := testUsers(10)
	sh := newShop(t, us)
	sh.fail = func(n int64) bool { return n == 7 || n == 300 }
	srv := sh.start()
	var log bytes.Buffer
	cfg := baseConfig(srv.URL, "mixed", 200, 2*time.Second)
	cfg.logFailures = 1
	s, err := run(context.Background(), cfg, us, &log)
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != 400 || s.OK != 398 || s.Failed != 2 || s.Statuses["500"] != 2 || s.SLI.Met || s.SLI.Success != 398.0/400 {
		t.Fatalf("summary %+v", s)
	}
	// The latency of the 200s alone is a distribution of its own.
	if s.LatencyOK.Max <= 0 || s.LatencyOK.Min < s.Latency.Min || s.LatencyOK.Max > s.Latency.Max {
		t.Errorf("latency of the 200s %+v, of all %+v", s.LatencyOK, s.Latency)
	}
	if !strings.Contains(log.String(), "failing on purpose") || strings.Count(log.String(), "shoot: failed") != 1 {
		t.Errorf("log %q: want the first failure with its body", log.String())
	}
}

// TestShootInterrupted cancels the run at the tenth request.
func TestShootInterrupted(t *testing.T) {
	us := testUsers(10)
	sh := newShop(t, us)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh.onReq = func(n int64) {
		if n == 10 {
			cancel()
		}
	}
	srv := sh.start()
	summaryFile := filepath.Join(t.TempDir(), "run.json")
	var log bytes.Buffer
	if code := shoot(ctx, baseConfig(srv.URL, "info", 200, 10*time.Second), writeUsers(t, us), summaryFile, &log); code != exitFailed {
		t.Fatalf("exit status %d, want %d", code, exitFailed)
	}
	s, err := results.ReadSummary(summaryFile)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Interrupted || s.Requests < 10 || s.Requests >= s.Wanted || s.SLI.Met {
		t.Errorf("summary %+v", s)
	}
}

func TestShootRefusesBadSettings(t *testing.T) {
	usersFile := writeUsers(t, testUsers(2))
	ok := baseConfig("http://127.0.0.1:1", "mixed", 10, time.Second)
	for name, edit := range map[string]func(*config){
		"remote target":  func(c *config) { c.base = "http://10.0.0.1:8080" },
		"https":          func(c *config) { c.base = "https://127.0.0.1:8080" },
		"a path":         func(c *config) { c.base = "http://127.0.0.1:8080/api" },
		"profile":        func(c *config) { c.profile = "browse" },
		"rate":           func(c *config) { c.rate = 0 },
		"duration":       func(c *config) { c.duration = time.Millisecond },
		"workers":        func(c *config) { c.maxWorkers = 0 },
		"timeout":        func(c *config) { c.timeout = 0 },
		"success":        func(c *config) { c.sli.Success = 1.5 },
		"negative lag":   func(c *config) { c.maxLag = -time.Second },
		"connection cap": func(c *config) { c.maxConns = -1 },
	} {
		cfg := ok
		edit(&cfg)
		var log bytes.Buffer
		if code := shoot(context.Background(), cfg, usersFile, "", &log); code != exitUsage {
			t.Errorf("%s: exit status %d, want %d (%s)", name, code, exitUsage, log.String())
		}
	}
	cfg := ok
	cfg.maxLag = 0
	if err := cfg.check(); err != nil || cfg.maxLag != time.Duration(cfg.sli.P99Ms)*time.Millisecond || cfg.maxConns != cfg.maxWorkers {
		t.Errorf("defaults: max lag %s (want the p99 objective), connections %d: %v", cfg.maxLag, cfg.maxConns, err)
	}
	var log bytes.Buffer
	if code := shoot(context.Background(), ok, filepath.Join(t.TempDir(), "none.tsv"), "", &log); code != exitFailed {
		t.Errorf("missing users file: exit status %d", code)
	}
}
