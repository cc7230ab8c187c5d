package main

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/merchshop/merchshop/tests/load/internal/users"
)

// TestAmmoParses reads the written ammo back the way phantom does (size,
// tag, then exactly size bytes of request) and parses every request.
func TestAmmoParses(t *testing.T) {
	g := &generator{rnd: rand.New(rand.NewPCG(1, 2)), host: "127.0.0.1:8080", users: []users.User{
		{Name: "load-000000", Password: "p0", Token: "t0"}, {Name: "load-000001", Password: "p1", Token: "t1"},
	}}
	var buf bytes.Buffer
	kinds := []string{"info", "buy", "send", "auth"}
	for _, k := range kinds {
		if err := g.write(&buf, k); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for _, want := range kinds {
		head, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		size, tag, _ := strings.Cut(strings.TrimSpace(head), " ")
		n, err := strconv.Atoi(size)
		if err != nil || tag != want {
			t.Fatalf("header %q", head)
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(r, raw); err != nil {
			t.Fatal(err)
		}
		if nl, _ := r.ReadByte(); nl != '\n' {
			t.Fatalf("%s: entry not followed by a newline", tag)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		body, _ := io.ReadAll(req.Body)
		switch tag {
		case "auth":
			if req.Method != http.MethodPost || req.URL.Path != "/api/auth" || req.Header.Get("Authorization") != "" || !bytes.Contains(body, []byte(`"password"`)) {
				t.Errorf("auth request %s %s %q", req.Method, req.URL, body)
			}
		case "send":
			if req.Method != http.MethodPost || req.URL.Path != "/api/sendCoin" || !strings.HasPrefix(req.Header.Get("Authorization"), "Bearer t") || !bytes.Contains(body, []byte(`"amount":1`)) {
				t.Errorf("send request %s %s %q", req.Method, req.URL, body)
			}
		case "buy":
			if req.Method != http.MethodGet || (req.URL.Path != "/api/buy/pen" && req.URL.Path != "/api/buy/socks") {
				t.Errorf("buy request %s %s", req.Method, req.URL)
			}
		case "info":
			if req.Method != http.MethodGet || req.URL.Path != "/api/info" || req.Header.Get("Authorization") == "" {
				t.Errorf("info request %s %s", req.Method, req.URL)
			}
		}
	}
}

func TestMixShares(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	counts := map[string]int{}
	for range 100_000 {
		counts[mixes["mixed"].pick(r)]++
	}
	for kind, want := range map[string]float64{"info": 0.70, "buy": 0.15, "send": 0.15} {
		if got := float64(counts[kind]) / 100_000; got < want-0.01 || got > want+0.01 {
			t.Errorf("%s share %.3f, want %.2f", kind, got, want)
		}
	}
}
