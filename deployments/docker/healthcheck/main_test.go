package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestTarget(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
		err  bool
	}{
		{"argument wins", []string{"http://x:1/readyz"}, map[string]string{"HTTP_ADDR": ":8080"}, "http://x:1/readyz", false},
		{"gateway address", nil, map[string]string{"HTTP_ADDR": ":8080", "HEALTHCHECK_URL": "http://127.0.0.1:9/healthz"}, "http://127.0.0.1:8080/healthz", false},
		{"admin address", nil, map[string]string{"ADMIN_ADDR": "0.0.0.0:8083"}, "http://127.0.0.1:8083/healthz", false},
		{"ipv6 wildcard", nil, map[string]string{"ADMIN_ADDR": "[::]:8085"}, "http://127.0.0.1:8085/healthz", false},
		{"explicit host kept", nil, map[string]string{"ADMIN_ADDR": "127.0.0.2:8082"}, "http://127.0.0.2:8082/healthz", false},
		{"image default", nil, map[string]string{"HEALTHCHECK_URL": "http://127.0.0.1:8081/healthz"}, "http://127.0.0.1:8081/healthz", false},
		{"bad address", nil, map[string]string{"ADMIN_ADDR": "8081"}, "", true},
		{"nothing", nil, map[string]string{}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := target(c.args, env(c.env))
			if (err != nil) != c.err || got != c.want {
				t.Fatalf("target = %q, %v; want %q, error %v", got, err, c.want, c.err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	if err := check(srv.URL+"/healthz", time.Second); err != nil {
		t.Fatalf("healthy server: %v", err)
	}
	if err := check(srv.URL+"/readyz", time.Second); err == nil {
		t.Fatal("503 must fail")
	}
	if err := check("ftp://example", time.Second); err == nil {
		t.Fatal("non-http URL must fail")
	}
	srv.Close()
	if err := check(srv.URL+"/healthz", time.Second); err == nil {
		t.Fatal("closed server must fail")
	}
}
