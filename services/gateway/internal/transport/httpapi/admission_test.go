package httpapi_test

import (
	"testing"
	"time"

	"github.com/merchshop/merchshop/services/gateway/internal/admission"
	"github.com/merchshop/merchshop/services/gateway/internal/transport/httpapi"
)

// An overloaded gateway refuses quickly with 503, Retry-After and the
// {"errors"} body; logins have their own bound, and the probes and the
// metrics are never refused.
func TestOverloadedGatewayAnswers503(t *testing.T) {
	const queueWait = 20 * time.Millisecond
	api, err := admission.New(admission.Config{MaxInFlight: 1, MaxQueue: 1, QueueTimeout: queueWait})
	if err != nil {
		t.Fatal(err)
	}
	logins, err := admission.New(admission.Config{MaxInFlight: 1, MaxQueue: 1, QueueTimeout: queueWait})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOption{cfg: func(c *httpapi.Config) {
		c.Admission = api
		c.LoginAdmission = logins
	}})
	auth := bearer(e.login("alice"))
	e.login("bob")

	// One request holds the only slot, stalled in the backend.
	s := newStall(1)
	e.w.stall.Store(s)
	held := make(chan reply, 1)
	go func() {
		r, err := e.try("GET", "/api/info", "", auth...)
		if err != nil {
			t.Error(err)
		}
		held <- r
	}()
	wait(t, s.entered, "the request holding the slot")

	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/info", ""},
		{"POST", "/api/sendCoin", `{"toUser":"bob","amount":1}`},
		{"GET", "/api/merch", ""},
	} {
		start := time.Now()
		r := e.do(c.method, c.path, c.body, auth...)
		took := time.Since(start)
		wantError(t, r, 503, "service overloaded, retry later")
		if got := r.resp.Header.Get("Retry-After"); got != "1" {
			t.Errorf("%s %s: Retry-After %q, want 1", c.method, c.path, got)
		}
		// Refused after the queue wait, not after the held request: well
		// within a second even on a loaded machine (50 ms on an idle one).
		if took < queueWait || took > time.Second {
			t.Errorf("%s %s: refused after %s (queue wait %s)", c.method, c.path, took, queueWait)
		}
	}
	if n := e.w.transfers.Load(); n != 0 {
		t.Fatalf("a refused sendCoin moved money (%d transfers)", n)
	}
	// Logins are bounded on their own, and the admin endpoints not at all.
	e.login("carol")
	for _, path := range []string{"/healthz", "/metrics"} {
		if r := e.do("GET", path, ""); r.status != 200 {
			t.Errorf("%s: %d while overloaded", path, r.status)
		}
	}

	// The slot is freed: the held request is answered, and the API serves again.
	close(s.release)
	if r := wait(t, held, "the held request"); r.status != 200 {
		t.Fatalf("held request: %d %s", r.status, r.body)
	}
	e.w.stall.Store(nil)
	if r := e.do("GET", "/api/info", "", auth...); r.status != 200 {
		t.Fatalf("after the overload: %d %s", r.status, r.body)
	}
	if st := api.Stats(); st.InFlight != 0 || st.Waiting != 0 {
		t.Fatalf("admission left behind: %+v", st)
	}
}

// Writes have a pool of their own: with every read slot held, a sendCoin
// is still admitted, and a read is refused.
func TestWritesHaveTheirOwnPool(t *testing.T) {
	reads, err := admission.New(admission.Config{MaxInFlight: 1, MaxQueue: 1, QueueTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	writes, err := admission.New(admission.Config{MaxInFlight: 1, MaxQueue: 1, QueueTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOption{cfg: func(c *httpapi.Config) {
		c.Admission = reads
		c.WriteAdmission = writes
	}})
	auth := bearer(e.login("alice"))
	e.login("bob")

	s := newStall(1)
	e.w.stall.Store(s)
	held := make(chan reply, 1)
	go func() {
		r, err := e.try("GET", "/api/info", "", auth...)
		if err != nil {
			t.Error(err)
		}
		held <- r
	}()
	wait(t, s.entered, "the read holding the read slot")
	wantError(t, e.do("GET", "/api/info", "", auth...), 503, "service overloaded, retry later")
	if r := e.do("POST", "/api/sendCoin", `{"toUser":"bob","amount":1}`, auth...); r.status != 200 {
		t.Fatalf("sendCoin with the read pool full: %d %s", r.status, r.body)
	}
	if st := writes.Stats(); st.InFlight != 0 {
		t.Fatalf("write slot not given back: %+v", st)
	}
	close(s.release)
	if r := wait(t, held, "the held read"); r.status != 200 {
		t.Fatalf("held read: %d %s", r.status, r.body)
	}
}
