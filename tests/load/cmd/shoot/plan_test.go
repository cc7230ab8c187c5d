package main

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/merchshop/merchshop/tests/load/internal/users"
)

func testUsers(n int) []users.User {
	us := make([]users.User, n)
	for i := range us {
		us[i] = users.User{Name: users.Name("load", i), Password: users.Password("load", i), Token: "tok-" + users.Name("load", i)}
	}
	return us
}

// scripted returns the given draws in order (modulo n), then fails.
func scripted(t *testing.T, draws ...int) func(int) int {
	return func(n int) int {
		if len(draws) == 0 {
			t.Fatal("more random draws than scripted")
		}
		v := draws[0] % n
		draws = draws[1:]
		return v
	}
}

func TestProfileMix(t *testing.T) {
	const draws = 200_000
	for profile, want := range map[string]map[string]float64{
		"mixed": {"/api/info": 0.70, "/api/buy/pen": 0.075, "/api/buy/socks": 0.075, "/api/sendCoin": 0.15},
		"info":  {"/api/info": 1},
		"auth":  {"/api/auth": 1},
		"buy":   {"/api/buy/pen": 0.5, "/api/buy/socks": 0.5},
		"send":  {"/api/sendCoin": 1},
	} {
		t.Run(profile, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, 2))
			p, err := newPlan("http://127.0.0.1:8080", profile, testUsers(1000), rnd.IntN)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for range draws {
				var tg vegeta.Target
				p.fill(&tg, p.mix.pick(p.intN), false)
				got[strings.TrimPrefix(tg.URL, "http://127.0.0.1:8080")]++
			}
			for path, share := range want {
				// Binomial standard deviation at 200k draws is under 0.11%;
				// 0.5% is more than four of them.
				if f := float64(got[path]) / draws; math.Abs(f-share) > 0.005 {
					t.Errorf("%s: %.4f of the requests, want %.3f", path, f, share)
				}
			}
			if len(got) != len(want) {
				t.Errorf("paths %v, want those of %v", got, want)
			}
		})
	}
	if _, err := profileMix("browse"); err == nil {
		t.Error("unknown profile accepted")
	}
}

func TestTargets(t *testing.T) {
	us := testUsers(3)
	us[2].Name, us[2].Password = `odd "name"\`, "pä\tss"
	base := "http://127.0.0.1:8080/"
	authed := func(i int) http.Header {
		return http.Header{"Authorization": {"Bearer " + us[i].Token}, "Content-Type": {"application/json"}, "User-Agent": {userAgent}}
	}
	for _, tc := range []struct {
		name    string
		profile string
		kind    kind
		draws   []int // the random draws fill makes, in order
		method  string
		path    string
		body    string
		header  http.Header
	}{
		{"info", "info", kindInfo, []int{1}, "GET", "/api/info", "", authed(1)},
		{"buy pen", "mixed", kindBuy, []int{0, 2}, "GET", "/api/buy/pen", "", authed(2)},
		{"buy socks", "mixed", kindBuy, []int{1, 0}, "GET", "/api/buy/socks", "", authed(0)},
		// The recipient is drawn again while it is the sender.
		{"send", "mixed", kindSend, []int{0, 0, 0, 1}, "POST", "/api/sendCoin", `{"toUser":"load-000001","amount":1}`, authed(0)},
		{"send escapes", "mixed", kindSend, []int{1, 2}, "POST", "/api/sendCoin", `{"toUser":"odd \"name\"\\","amount":1}`, authed(1)},
		// Logins carry no token.
		{"auth", "auth", kindAuth, []int{0}, "POST", "/api/auth", `{"username":"load-000000","password":"pw-load-000000-x"}`,
			http.Header{"Content-Type": {"application/json"}, "User-Agent": {userAgent}}},
		{"auth escapes", "auth", kindAuth, []int{2}, "POST", "/api/auth", `{"username":"odd \"name\"\\","password":"pä\tss"}`,
			http.Header{"Content-Type": {"application/json"}, "User-Agent": {userAgent}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newPlan(base, tc.profile, us, scripted(t, tc.draws...))
			if err != nil {
				t.Fatal(err)
			}
			var tg vegeta.Target
			p.fill(&tg, tc.kind, false)
			if tg.Method != tc.method || tg.URL != "http://127.0.0.1:8080"+tc.path || string(tg.Body) != tc.body {
				t.Fatalf("target %s %s %q", tg.Method, tg.URL, tg.Body)
			}
			if !reflect.DeepEqual(tg.Header, tc.header) {
				t.Errorf("header %v, want %v", tg.Header, tc.header)
			}
			if tc.body != "" && !json.Valid(tg.Body) {
				t.Errorf("body %s is not JSON", tg.Body)
			}
			// What goes on the wire: vegeta's request of the target.
			req, err := tg.Request()
			if err != nil {
				t.Fatal(err)
			}
			if req.ContentLength != int64(len(tc.body)) || req.Header.Get("Idempotency-Key") != "" {
				t.Errorf("request length %d, header %v", req.ContentLength, req.Header)
			}
			if rt, ok := p.byURL[tg.URL]; !ok || rt.kind != tc.kind || rt.dropURL == tg.URL {
				t.Errorf("results would not find %s as %s", tg.URL, tc.kind)
			}
		})
	}
}

func TestDroppedTarget(t *testing.T) {
	p, err := newPlan("http://127.0.0.1:8080", "mixed", testUsers(2), scripted(t))
	if err != nil {
		t.Fatal(err)
	}
	var tg vegeta.Target
	p.fill(&tg, kindSend, true)
	if tg.URL != droppedScheme+"://dropped/api/sendCoin" || tg.Body != nil || tg.Header != nil {
		t.Fatalf("dropped target %+v", tg)
	}
	if rt := p.byURL[tg.URL]; rt.kind != kindSend || rt.dropURL != tg.URL {
		t.Errorf("results would file %s as %+v", tg.URL, rt)
	}
	req, err := tg.Request()
	if err != nil {
		t.Fatal(err)
	}
	// The transport fails it without the network.
	cfg := config{timeout: time.Second, maxConns: 1}
	resp, err := newTransport(&cfg).RoundTrip(req)
	if resp != nil {
		_ = resp.Body.Close()
		t.Error("a dropped request got an answer")
	}
	if !errors.Is(err, errDropped) {
		t.Errorf("RoundTrip: %v, want errDropped", err)
	}
}

func TestTargeterDropsLateRequests(t *testing.T) {
	p, err := newPlan("http://127.0.0.1:8080", "info", testUsers(2), rand.IntN)
	if err != nil {
		t.Fatal(err)
	}
	// The first request was due a millisecond after a start a second ago.
	late := &schedule{start: time.Now().Add(-time.Second), interval: time.Millisecond, wanted: 10, maxLag: 50 * time.Millisecond}
	var tg vegeta.Target
	if err := targeter(p, late)(&tg); err != nil || !strings.HasPrefix(tg.URL, droppedScheme+":") {
		t.Fatalf("a request 999 ms late: %s, %v", tg.URL, err)
	}
	if late.issued.Load() != 1 || late.inFlight.Load() != 0 {
		t.Errorf("issued %d, in flight %d", late.issued.Load(), late.inFlight.Load())
	}
	// Due in the future: on time.
	early := &schedule{start: time.Now().Add(time.Hour), interval: time.Millisecond, wanted: 10, maxLag: 50 * time.Millisecond}
	next := targeter(p, early)
	for range 3 {
		tg = vegeta.Target{}
		if err := next(&tg); err != nil || tg.URL != "http://127.0.0.1:8080/api/info" {
			t.Fatalf("a request on time: %s, %v", tg.URL, err)
		}
	}
	if early.inFlight.Load() != 3 || early.peak.Load() != 3 {
		t.Errorf("in flight %d, peak %d", early.inFlight.Load(), early.peak.Load())
	}
}

func TestLimitPacer(t *testing.T) {
	p := limitPacer{ConstantPacer: vegeta.ConstantPacer{Freq: 200, Per: time.Second}, hits: 400}
	if wait, stop := p.Pace(0, 0); stop || wait != 5*time.Millisecond {
		t.Errorf("first hit: wait %s, stop %v; want 5ms (hit n is due at (n+1) intervals)", wait, stop)
	}
	if wait, stop := p.Pace(time.Second, 199); stop || wait != 0 {
		t.Errorf("hit 199 at 1 s: wait %s, stop %v", wait, stop)
	}
	if _, stop := p.Pace(time.Second, 400); !stop {
		t.Error("no stop after the last hit")
	}
}

func TestNewPlanNeedsTwoUsers(t *testing.T) {
	if _, err := newPlan("http://127.0.0.1:8080", "mixed", testUsers(1), rand.IntN); err == nil {
		t.Error("a single user accepted")
	}
}

// TestForwardedForIsPerUser: with forwardedFor, every login carries its
// user's own address, distinct between users.
func TestForwardedForIsPerUser(t *testing.T) {
	p, err := newPlan("http://127.0.0.1:8080", "auth", testUsers(3), scripted(t, 0, 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	p.forwardedFor = true
	var a, b vegeta.Target
	p.fill(&a, kindAuth, false)
	p.fill(&b, kindAuth, false)
	if got := a.Header.Get("X-Forwarded-For"); got != "10.0.0.0" {
		t.Errorf("user 0 from %q, want 10.0.0.0", got)
	}
	if got := b.Header.Get("X-Forwarded-For"); got != "10.0.0.2" {
		t.Errorf("user 2 from %q, want 10.0.0.2", got)
	}
	if userAddr(70000) != "10.1.17.112" {
		t.Errorf("userAddr(70000) = %s", userAddr(70000))
	}
	p.forwardedFor = false
	p.fill(&a, kindAuth, false)
	if a.Header.Get("X-Forwarded-For") != "" {
		t.Error("X-Forwarded-For sent without forwardedFor")
	}
}
