// Command seed registers (or logs in again) N load-test users through the
// public API, POST /api/auth, concurrently, and writes one line per user,
// "username<TAB>password<TAB>token", for the load profiles and the ammo
// generator. The first login of a name registers it through the services'
// own code path (user, coins account with the welcome grant, session); a
// later run logs the same users in again and refreshes their tokens (access
// tokens live AUTH_ACCESS_TTL, 1 h by default).
//
// Usernames and passwords are deterministic (prefix + index), so any run
// reproduces the same users.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/merchshop/merchshop/tests/load/internal/users"
)

type config struct {
	base     string
	users    int
	workers  int
	prefix   string
	out      string
	summary  string
	timeout  time.Duration
	attempts int
}

func main() {
	var c config
	flag.StringVar(&c.base, "url", "http://127.0.0.1:8080", "gateway base URL (loopback only)")
	flag.IntVar(&c.users, "users", 100_000, "number of users")
	flag.IntVar(&c.workers, "workers", 32, "concurrent logins")
	flag.StringVar(&c.prefix, "prefix", "load", "username prefix: <prefix>-<index>")
	flag.StringVar(&c.out, "out", "users.tsv", "output file: username, password, token per line")
	flag.StringVar(&c.summary, "summary", "", "optional JSON file for the run's figures")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Second, "timeout of one login")
	flag.IntVar(&c.attempts, "attempts", 8, "tries per user on a 5xx, a 429 or a transport error (backoff up to 5 s)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

type result struct {
	i     int
	token string
	took  time.Duration
	err   error
}

func run(ctx context.Context, c config) error {
	if err := users.CheckLoopback(c.base); err != nil {
		return err
	}
	if c.users < 1 || c.workers < 1 {
		return errors.New("users and workers must be positive")
	}
	client := &http.Client{
		Timeout: c.timeout,
		Transport: &http.Transport{
			MaxIdleConns:        c.workers,
			MaxIdleConnsPerHost: c.workers,
			IdleConnTimeout:     30 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
	}
	tokens := make([]string, c.users)
	jobs := make(chan int)
	results := make(chan result, c.workers)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			for i := range jobs {
				start := time.Now()
				tok, err := login(ctx, client, c, i)
				results <- result{i: i, token: tok, took: time.Since(start), err: err}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range c.users {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	start := time.Now()
	var (
		done, failed atomic.Int64
		firstErr     error
		lat          = make([]time.Duration, 0, c.users)
	)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case r, ok := <-results:
			if !ok {
				goto finished
			}
			if r.err != nil {
				failed.Add(1)
				if firstErr == nil {
					firstErr = r.err
				}
				continue
			}
			tokens[r.i] = r.token
			lat = append(lat, r.took)
			done.Add(1)
		case <-tick.C:
			el := time.Since(start)
			n := done.Load()
			fmt.Fprintf(os.Stderr, "seed: %d/%d users in %s (%.0f/s), %d failed\n",
				n, c.users, el.Round(time.Second), float64(n)/el.Seconds(), failed.Load())
		}
	}
finished:
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted after %d users: %w", done.Load(), err)
	}
	if failed.Load() > 0 {
		return fmt.Errorf("%d of %d logins failed; first: %w", failed.Load(), c.users, firstErr)
	}
	if err := writeUsers(c, tokens); err != nil {
		return err
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Fprintf(os.Stderr, "seed: %d users in %s (%.0f logins/s; latency p50 %.1f ms, p99 %.1f ms) -> %s\n",
		c.users, elapsed.Round(time.Millisecond), float64(c.users)/elapsed.Seconds(), q(0.5), q(0.99), c.out)
	if c.summary != "" {
		b, _ := json.MarshalIndent(map[string]any{
			"users": c.users, "workers": c.workers, "seconds": elapsed.Seconds(),
			"logins_per_second": float64(c.users) / elapsed.Seconds(),
			"p50_ms":            q(0.5), "p99_ms": q(0.99), "finished": time.Now().UTC().Format(time.RFC3339),
		}, "", "  ")
		if err := os.WriteFile(c.summary, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	return nil
}

// login posts the user's credentials, retrying 5xx answers and transport
// errors (a registration is idempotent: the same name and password log in).
func login(ctx context.Context, client *http.Client, c config, i int) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": users.Name(c.prefix, i), "password": users.Password(c.prefix, i)})
	var last error
	for attempt := range c.attempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(min(time.Duration(attempt*attempt)*200*time.Millisecond, 5*time.Second)):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/auth", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		_ = resp.Body.Close()
		if err != nil {
			last = err
			continue
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			last = fmt.Errorf("user %d: HTTP %d %s", i, resp.StatusCode, bytes.TrimSpace(data))
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("user %d: HTTP %d %s", i, resp.StatusCode, bytes.TrimSpace(data))
		}
		var out struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(data, &out); err != nil || out.Token == "" {
			return "", fmt.Errorf("user %d: no token in %q", i, data)
		}
		return out.Token, nil
	}
	return "", last
}

func writeUsers(c config, tokens []string) error {
	if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
		return err
	}
	tmp := c.out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i, t := range tokens {
		if _, err := fmt.Fprintf(w, "%s\t%s\t%s\n", users.Name(c.prefix, i), users.Password(c.prefix, i), t); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, c.out)
}
