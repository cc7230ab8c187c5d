// Command prime gives the first -n seeded users a history before a load
// run: each sends -transfers coins, one at a time, to others of them and
// buys -purchases pens, through the public API. Every request carries a
// deterministic Idempotency-Key (prime-<sender>-<n>), so priming again
// replays instead of adding history: the history of a primed system is the
// same however often it ran. With -warm it then reads GET /api/info once
// for every user in the file, as users who have been around would have:
// the gateway has checked each token once and each view is cached, so a
// run measures the steady state, not a restart.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/merchshop/merchshop/tests/load/internal/users"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "the system's base URL (loopback only)")
	file := flag.String("users", "", "the users file written by cmd/seed")
	n := flag.Int("n", 1000, "how many of the first users to prime")
	transfers := flag.Int("transfers", 40, "transfers each primed user sends")
	purchases := flag.Int("purchases", 5, "purchases each primed user makes")
	workers := flag.Int("workers", 32, "requests in flight")
	warm := flag.Bool("warm", false, "afterwards read GET /api/info once for every user in the file")
	flag.Parse()
	if err := run(*base, *file, *n, *transfers, *purchases, *workers, *warm); err != nil {
		fmt.Fprintln(os.Stderr, "prime:", err)
		os.Exit(1)
	}
}

type job struct {
	token, method, path, key string
	body                     []byte
}

func run(base, file string, n, transfers, purchases, workers int, warm bool) error {
	if err := users.CheckLoopback(base); err != nil {
		return err
	}
	us, err := users.Read(file)
	if err != nil {
		return err
	}
	if n > len(us) {
		n = len(us)
	}
	if n < 2 {
		return fmt.Errorf("need at least 2 users to prime, have %d", n)
	}
	rng := rand.New(rand.NewPCG(1, 2)) // the same history every time
	var jobs []job
	for i := 0; i < n; i++ {
		for k := 0; k < transfers; k++ {
			to := rng.IntN(n - 1)
			if to >= i {
				to++
			}
			body, _ := json.Marshal(map[string]any{"toUser": us[to].Name, "amount": 1})
			jobs = append(jobs, job{us[i].Token, http.MethodPost, "/api/sendCoin", fmt.Sprintf("prime-%d-t%d", i, k), body})
		}
		for k := 0; k < purchases; k++ {
			jobs = append(jobs, job{us[i].Token, http.MethodGet, "/api/buy/pen", fmt.Sprintf("prime-%d-b%d", i, k), nil})
		}
	}
	rng.Shuffle(len(jobs), func(a, b int) { jobs[a], jobs[b] = jobs[b], jobs[a] })
	if err := runJobs("history", jobs, base, workers); err != nil {
		return err
	}
	fmt.Printf("prime: %d users, %d transfers and %d purchases each\n", n, transfers, purchases)
	if !warm {
		return nil
	}
	reads := make([]job, 0, len(us))
	for _, u := range us {
		reads = append(reads, job{token: u.Token, method: http.MethodGet, path: "/api/info"})
	}
	return runJobs("warm", reads, base, workers)
}

// runJobs sends jobs with workers in flight and reports progress.
func runJobs(what string, jobs []job, base string, workers int) error {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	ch := make(chan job)
	var done, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if err := send(client, base, j); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				done.Add(1)
			}
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Printf("prime %s: %d/%d requests in %.0fs, %d failed\n", what, done.Load(), len(jobs), time.Since(start).Seconds(), failed.Load())
			}
		}
	}()
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	fmt.Printf("prime %s: %d requests in %.1fs, %d failed\n", what, len(jobs), time.Since(start).Seconds(), failed.Load())
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d requests failed, the first: %v", f, firstErr.Load())
	}
	return nil
}

// send makes one request, retrying (with the same key) what the system
// refused as overloaded or failed on the way.
func send(client *http.Client, base string, j job) error {
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		req, err := http.NewRequest(j.method, base+j.path, bytes.NewReader(j.body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+j.token)
		if j.key != "" {
			req.Header.Set("Idempotency-Key", j.key)
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("%s %s: %d %s", j.method, j.path, resp.StatusCode, bytes.TrimSpace(b))
		if resp.StatusCode < 500 {
			return last
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond) // back off before a retry
	}
	return last
}
