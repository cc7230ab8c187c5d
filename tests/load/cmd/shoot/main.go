// Command shoot is the load generator of the Merch Shop load suite: an open
// model at a constant rate, built on vegeta's library (its attacker and
// constant pacer) with the suite's profiles, SLI and summary.
//
//	-profile mixed  70% GET /api/info, 15% GET /api/buy/{pen|socks},
//	                15% POST /api/sendCoin (1 coin to another random user)
//	-profile info   GET /api/info only
//	-profile auth   POST /api/auth: existing users logging in again
//	-profile buy    GET /api/buy/{pen|socks} only, -profile send POST
//	                /api/sendCoin only (the cost table's single routes)
//
// Every request picks a random user of the users file (cmd/seed writes it:
// name, password, token per line) and, but for logins, carries the user's
// bearer token.
//
// Requests start on schedule whatever the latency, on at most -max-workers
// at a time. A request that cannot start within -max-lag of its time (every
// worker busy, or the generator itself late) is dropped: not sent, and
// counted as a failure, since in an open model it is a request the system
// did not take.
//
// The SLI: p99 of all requests <= -p99 ms (50) and at least -success
// (99.99%) of the requests answered 200, dropped ones counting as failures.
// The summary (-summary) is JSON that cmd/report reads. Exit status: 0 when
// the run met the SLI, 99 when it did not, 1 when the run failed or was
// interrupted, 2 for bad flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/merchshop/merchshop/tests/load/internal/results"
	"github.com/merchshop/merchshop/tests/load/internal/users"
)

// Exit statuses; scripts/load.sh relies on 99.
const (
	exitMet    = 0
	exitFailed = 1
	exitUsage  = 2
	exitMissed = 99
)

func main() {
	cfg := config{sli: results.DefaultSLI()}
	flag.StringVar(&cfg.base, "url", "http://127.0.0.1:8080", "the gateway (loopback only)")
	flag.StringVar(&cfg.profile, "profile", "mixed", "mixed, info, auth, buy or send")
	flag.IntVar(&cfg.rate, "rate", 1000, "requests per second, all endpoints together")
	flag.DurationVar(&cfg.duration, "duration", time.Minute, "how long to send")
	flag.IntVar(&cfg.maxWorkers, "max-workers", 2000, "requests in flight at most")
	flag.IntVar(&cfg.maxConns, "max-conns", 0, "connections to the gateway at most (0: as many as -max-workers)")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "request timeout (a timeout is a failure)")
	flag.DurationVar(&cfg.maxLag, "max-lag", 0, "drop a request that cannot start this long after its time (0: the p99 objective)")
	flag.Float64Var(&cfg.sli.P99Ms, "p99", cfg.sli.P99Ms, "SLI: p99 latency objective, milliseconds")
	flag.Float64Var(&cfg.sli.Success, "success", cfg.sli.Success, "SLI: share of requests that must answer 200")
	flag.IntVar(&cfg.logFailures, "log-failures", 0, "log the first N failed requests")
	flag.BoolVar(&cfg.forwardedFor, "forwarded-for", false,
		"logins carry X-Forwarded-For with one address per user (the gateway must trust 127.0.0.1: GATEWAY_TRUSTED_PROXIES)")
	usersFile := flag.String("users", "results/users.tsv", "users file from cmd/seed")
	summary := flag.String("summary", "", "write the run's JSON summary here")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the generator here")
	procs := flag.Int("procs", 1, "GOMAXPROCS of the generator (0: the Go default, one per core)")
	flag.Parse()
	// One P is the cheapest below ~10k req/s: a request passes through
	// about six goroutines (pacer, worker, the connection's writer and
	// reader, the results), and with more Ps each hand-off may wake a
	// parked thread; at 1000 req/s that doubles the CPU per request.
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile, err := profileCPU(*cpuProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoot:", err)
		os.Exit(exitFailed)
	}
	code := shoot(ctx, cfg, *usersFile, *summary, os.Stderr)
	if err := stopProfile(); err != nil {
		fmt.Fprintln(os.Stderr, "shoot:", err)
		code = exitFailed
	}
	stop()
	os.Exit(code)
}

// profileCPU starts a CPU profile into path (none when path is empty) and
// returns the function that ends it.
func profileCPU(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

// shoot runs cfg with the users of usersFile, writes the summary and
// returns the exit status.
func shoot(ctx context.Context, cfg config, usersFile, summaryFile string, log io.Writer) int {
	if err := cfg.check(); err != nil {
		_, _ = fmt.Fprintln(log, "shoot:", err)
		return exitUsage
	}
	us, err := users.Read(usersFile)
	if err != nil {
		_, _ = fmt.Fprintln(log, "shoot:", err)
		return exitFailed
	}
	_, _ = fmt.Fprintf(log, "shoot: %s at %d req/s for %s to %s (%d users, at most %d in flight, drop after %s late)\n",
		cfg.profile, cfg.rate, cfg.duration, cfg.base, len(us), cfg.maxWorkers, cfg.maxLag)
	s, err := run(ctx, cfg, us, log)
	if err != nil {
		_, _ = fmt.Fprintln(log, "shoot:", err)
		return exitFailed
	}
	if summaryFile != "" {
		if err := results.WriteSummary(summaryFile, s); err != nil {
			_, _ = fmt.Fprintln(log, "shoot:", err)
			return exitFailed
		}
	}
	describe(log, &s)
	switch {
	case s.Interrupted:
		_, _ = fmt.Fprintln(log, "shoot: interrupted")
		return exitFailed
	case s.SLI.Met:
		return exitMet
	default:
		return exitMissed
	}
}

// describe writes the run's figures for a person reading the log.
func describe(w io.Writer, s *results.Summary) {
	verdict := "met"
	if !s.SLI.Met {
		verdict = fmt.Sprintf("NOT met (%v)", s.SLI.Missed)
	}
	_, _ = fmt.Fprintf(w, "shoot: %d of %d requests sent (%d dropped) in %.1f s, %.1f req/s; %d answered 200 (%.4f%%)\n",
		s.Requests, s.Wanted, s.Dropped, s.ElapsedS, s.AchievedRPS, s.OK, s.SuccessRate()*100)
	_, _ = fmt.Fprintf(w, "shoot: latency ms p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f; start lag ms p99 %.2f max %.2f; peak in flight %d\n",
		s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.P999, s.Latency.Max, s.StartLag.P99, s.StartLag.Max, s.PeakInFlight)
	_, _ = fmt.Fprintf(w, "shoot: generator CPU %.2f s, %.3f ms per request\n", s.GeneratorCPUS, s.GeneratorCPUPerRequestMs())
	for _, k := range []string{"info", "buy", "send", "auth"} {
		if e, ok := s.Endpoints[k]; ok {
			_, _ = fmt.Fprintf(w, "shoot:   %-4s %7d sent %5d failed %5d dropped  p50 %.2f p99 %.2f ms\n",
				k, e.Requests, e.Failed, e.Dropped, e.Latency.P50, e.Latency.P99)
		}
	}
	for _, e := range errorKinds(s.Errors) {
		_, _ = fmt.Fprintf(w, "shoot:   %d x %s\n", s.Errors[e], e)
	}
	_, _ = fmt.Fprintf(w, "shoot: statuses %v; SLI (p99 <= %.0f ms, success >= %.2f%%) %s\n",
		s.Statuses, s.SLI.Objective.P99Ms, s.SLI.Objective.Success*100, verdict)
}
