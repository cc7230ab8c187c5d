package e2e

// Hostile clients against the running gateway (loopback only, bounded in
// time): slowloris headers, slow bodies, many idle connections, oversized
// headers and streamed bodies, and brute-forced logins. The server limits
// checked here are the gateway's defaults (pkg/httpserver.New); when the
// gateway runs with HTTP_READ_HEADER_TIMEOUT or HTTP_READ_TIMEOUT set, set
// the same variables for the test.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func durationEnv(t *testing.T, key string, def time.Duration) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(envOr(key, def.String()))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return d
}

// slack is how much later than its timeout the server may cut a client off.
const slack = 3 * time.Second

func gatewayAddr(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return host
}

func dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", gatewayAddr(t), 3*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dribble writes chunks every interval until the server closes the
// connection or limit passes; it returns when and how the connection ended
// and what the server answered (if anything).
func dribble(c net.Conn, first string, chunk func(i int) string, interval, limit time.Duration) (time.Duration, string, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(limit))
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c) // until the server closes (or the deadline)
		got <- string(b)
	}()
	if _, err := io.WriteString(c, first); err != nil {
		return time.Since(start), "", err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case answer := <-got:
			return time.Since(start), answer, nil
		case <-tick.C:
			if time.Since(start) > limit {
				return time.Since(start), "", errors.New("still open at the limit")
			}
			if _, err := io.WriteString(c, chunk(i)); err != nil {
				// Closed by the server: wait for the reader to see it.
				answer := <-got
				return time.Since(start), answer, nil
			}
		}
	}
}

func TestSlowlorisHeadersAreCutOff(t *testing.T) {
	needSystem(t)
	t.Parallel()
	timeout := durationEnv(t, "HTTP_READ_HEADER_TIMEOUT", 5*time.Second)
	c := dial(t)
	took, answer, err := dribble(c, "GET /healthz HTTP/1.1\r\nHost: shop\r\n",
		func(i int) string { return fmt.Sprintf("X-Dribble-%d: y\r\n", i) }, 250*time.Millisecond, timeout+slack)
	if err != nil {
		t.Fatalf("a client dribbling headers was not cut off within %v: %v", timeout+slack, err)
	}
	if strings.Contains(answer, " 200 ") {
		t.Fatalf("the dribbled request was answered: %q", answer)
	}
	t.Logf("dribbling client cut off after %v (ReadHeaderTimeout %v)", took.Round(time.Millisecond), timeout)
}

func TestSlowBodyIsCutOff(t *testing.T) {
	needSystem(t)
	t.Parallel()
	timeout := durationEnv(t, "HTTP_READ_TIMEOUT", 15*time.Second)
	c := dial(t)
	head := "POST /api/auth HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
	took, answer, err := dribble(c, head, func(int) string { return " " }, 250*time.Millisecond, timeout+slack)
	if err != nil {
		t.Fatalf("a client dribbling its body was not cut off within %v: %v", timeout+slack, err)
	}
	// Either the server closed the connection or it refused the body it
	// could not read; it never went on with a partial body.
	if answer != "" && !strings.HasPrefix(answer, "HTTP/1.1 400 ") && !strings.HasPrefix(answer, "HTTP/1.1 408 ") {
		t.Fatalf("slow body answered %q", firstLine(answer))
	}
	t.Logf("slow body cut off after %v (ReadTimeout %v), answer %q", took.Round(time.Millisecond), timeout, firstLine(answer))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

func TestManyIdleConnections(t *testing.T) {
	needSystem(t)
	t.Parallel()
	const n = 200
	timeout := durationEnv(t, "HTTP_READ_HEADER_TIMEOUT", 5*time.Second)
	addr := gatewayAddr(t)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		// Half send nothing, half start a request and stall.
		if i%2 == 1 {
			_, _ = io.WriteString(c, "GET /api/info HTTP/1.1\r\nHost: shop\r\n")
		}
	}
	opened := time.Now()

	// The gateway still answers at once on a new connection.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var worst time.Duration
	for range 20 {
		start := time.Now()
		resp, err := client.Get(baseURL + "/healthz")
		if err != nil {
			t.Fatalf("healthz with %d idle connections open: %v", n, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz answered %d", resp.StatusCode)
		}
		worst = max(worst, time.Since(start))
	}
	if worst > time.Second {
		t.Fatalf("healthz took up to %v with %d idle connections open", worst, n)
	}

	// And it closes all of them by itself within its header timeout.
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	deadline := opened.Add(timeout + slack)
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(deadline)
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				mu.Lock()
				open++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if open > 0 {
		t.Fatalf("%d of %d idle connections still open %v after they were opened", open, n, timeout+slack)
	}
	t.Logf("%d idle connections: healthz worst %v; all closed by the server within %v", n, worst.Round(time.Millisecond), timeout+slack)
}

func TestOversizedHeaderRefused(t *testing.T) {
	needSystem(t)
	t.Parallel()
	c := dial(t)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	big := strings.Repeat("a", 128<<10)
	// Written from another goroutine: the server may answer and close
	// before it has read everything.
	go func() {
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: shop\r\nX-Big: "+big+"\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("oversized header: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized header answered %d, want 431", resp.StatusCode)
	}
}

func TestStreamedOversizedBodyRefused(t *testing.T) {
	needSystem(t)
	t.Parallel()
	// No Content-Length: the limit must hold on the bytes read.
	pr, pw := io.Pipe()
	go func() {
		chunk := []byte(strings.Repeat("x", 16<<10))
		_, _ = pw.Write([]byte(`{"username":"`))
		for range 64 { // 1 MiB, well over the 64 KiB limit
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		_ = pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, baseURL+"/api/auth", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked
	resp, err := httpClient.Do(req)
	_ = pr.CloseWithError(errors.New("done"))
	if err != nil {
		t.Fatalf("streamed body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	r := reply{status: resp.StatusCode, body: b, header: resp.Header, resp: resp}
	wantError(t, r, 413, "1 MiB chunked body")
}

func TestLoginBruteForceLimited(t *testing.T) {
	needSystem(t)
	t.Parallel()
	// The gateway's default is 10 failed attempts per username a minute;
	// a gateway run with another AUTH_RATE_PER_USER needs the same setting
	// here.
	rate := envOr("AUTH_RATE_PER_USER", "10/1m")
	if rate == "off" || rate == "0" {
		t.Skip("AUTH_RATE_PER_USER is off")
	}
	n, _, _ := strings.Cut(rate, "/")
	burst, err := strconv.Atoi(envOr("AUTH_RATE_PER_USER_BURST", n))
	if err != nil || burst < 1 {
		t.Fatalf("AUTH_RATE_PER_USER %q / AUTH_RATE_PER_USER_BURST: want N/period and a burst >= 1", rate)
	}
	u := newUser(t, "bruteforce")
	wrong := fmt.Sprintf(`{"username":%q,"password":"guess"}`, u.name)
	var limited reply
	// A slow machine may refill a token while the failures are sent.
	for i := range burst + 3 {
		r := do(t, "POST", "/api/auth", wrong)
		if r.status == http.StatusTooManyRequests {
			limited = r
			if i < burst {
				t.Fatalf("limited after %d failures, want %d allowed", i, burst)
			}
			break
		}
		wantError(t, r, 401, "wrong password")
	}
	if limited.status == 0 {
		t.Fatalf("%d wrong passwords in a row were never limited", burst+3)
	}
	wantJSON(t, limited, 429, `{"errors":"too many login attempts, try again later"}`, "limited login")
	if s, err := strconv.Atoi(limited.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q, want 1..60 seconds", limited.header.Get("Retry-After"))
	}
	// Locked now even with the right password; other users are not.
	right := fmt.Sprintf(`{"username":%q,"password":%q}`, u.name, u.password)
	wantStatus(t, do(t, "POST", "/api/auth", right), 429, "right password while locked")
	other := newUser(t, "bruteforce-bystander")
	other.login(t)
}
