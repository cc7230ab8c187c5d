package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/merchshop/merchshop/tests/load/internal/results"
	"github.com/merchshop/merchshop/tests/load/internal/users"
)

// config is one run's settings (the command's flags).
type config struct {
	base        string        // the gateway, loopback only
	profile     string        // mixed, info or auth
	rate        int           // requests per second, all endpoints together
	duration    time.Duration // how long the schedule runs
	maxWorkers  int           // requests in flight at most
	maxConns    int           // connections to the gateway at most (0: maxWorkers)
	timeout     time.Duration // per request, connecting included
	maxLag      time.Duration // a request starting later than this is dropped (0: the p99 objective)
	sli         results.SLI
	logFailures int // log this many failed requests (with up to 200 bytes of their body)
	// forwardedFor: logins carry X-Forwarded-For, one address per user.
	forwardedFor bool
}

func (c *config) check() error {
	u, err := url.Parse(c.base)
	if err != nil {
		return fmt.Errorf("url %q: %w", c.base, err)
	}
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("url %q: want http://host:port", c.base)
	}
	if err := users.CheckLoopback(c.base); err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if _, err := profileMix(c.profile); err != nil {
		return err
	}
	switch {
	case c.rate < 1 || c.rate > 1_000_000:
		return fmt.Errorf("rate %d: want 1 to 1000000 requests per second", c.rate)
	case c.duration < time.Second/time.Duration(c.rate):
		return fmt.Errorf("duration %s: shorter than one request at %d/s", c.duration, c.rate)
	case c.maxWorkers < 1:
		return fmt.Errorf("max-workers %d: want at least 1", c.maxWorkers)
	case c.maxConns < 0:
		return fmt.Errorf("max-conns %d: want 0 (as many as workers) or more", c.maxConns)
	case c.timeout <= 0:
		return fmt.Errorf("timeout %s: want a positive duration", c.timeout)
	case c.maxLag < 0:
		return fmt.Errorf("max-lag %s: want 0 (the p99 objective) or more", c.maxLag)
	case c.sli.P99Ms <= 0 || c.sli.Success <= 0 || c.sli.Success > 1:
		return fmt.Errorf("SLI p99 %v ms, success %v: want a positive p99 and a success fraction in (0, 1]", c.sli.P99Ms, c.sli.Success)
	}
	if c.maxConns == 0 {
		c.maxConns = c.maxWorkers
	}
	if c.maxLag == 0 {
		c.maxLag = time.Duration(c.sli.P99Ms * float64(time.Millisecond))
	}
	return nil
}

// errDropped is what a dropped request fails with.
var errDropped = errors.New("dropped: not started on time")

// droppedRoundTripper fails every request: the transport's round tripper
// for droppedScheme. (A wrapper around the whole transport would do too,
// but net/http then enforces the client timeout with a goroutine and a
// timer per request instead of a context deadline.)
type droppedRoundTripper struct{}

func (droppedRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return nil, errDropped
}

// limitPacer is vegeta's constant pacer stopped after a number of hits: the
// attack hands out exactly the scheduled requests, each one sent or dropped.
type limitPacer struct {
	vegeta.ConstantPacer
	hits uint64
}

func (p limitPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= p.hits {
		return 0, true
	}
	return p.ConstantPacer.Pace(elapsed, hits)
}

// schedule is the open model's timetable: vegeta's constant pacer sends hit
// n (from 0) at (n+1) intervals after the start. A hit whose worker takes it
// up more than maxLag after that is dropped: vegeta's attacker does not drop
// requests when all its workers are busy, it sends them late, which would
// hide the stall (and then send a burst).
type schedule struct {
	start    time.Time
	interval time.Duration
	wanted   uint64
	maxLag   time.Duration

	issued   atomic.Uint64 // targets handed out
	inFlight atomic.Int64  // sent and not yet in the results
	peak     atomic.Int64
}

func (s *schedule) due(n uint64) time.Duration { return time.Duration(n+1) * s.interval }

// targeter hands out the requests of p on schedule s. Vegeta calls it from
// its workers, concurrently, right before sending.
func targeter(p *plan, s *schedule) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		n := s.issued.Add(1) - 1
		late := time.Since(s.start) - s.due(n)
		dropped := late > s.maxLag
		p.fill(t, p.mix.pick(p.intN), dropped)
		if !dropped {
			in := s.inFlight.Add(1)
			for {
				peak := s.peak.Load()
				if in <= peak || s.peak.CompareAndSwap(peak, in) {
					break
				}
			}
		}
		return nil
	}
}

// maxErrorKinds bounds the distinct transport errors kept for the summary.
const maxErrorKinds = 20

// aggregator folds the results in; one goroutine owns it.
type aggregator struct {
	p   *plan
	s   *schedule
	eps [numKinds]struct {
		h                     hist
		requests, ok, dropped int64
	}
	lag         hist
	ok          hist          // latency of the requests answered 200
	statuses    map[int]int64 // of failed requests; 0: no answer
	errs        map[string]int64
	lastEnd     time.Duration
	unknown     int64
	logFailures int
	log         io.Writer
}

func (a *aggregator) add(r *vegeta.Result) {
	rt, ok := a.p.byURL[r.URL]
	if !ok {
		a.unknown++
		return
	}
	since := r.Timestamp.Sub(a.s.start)
	a.lag.record(since - a.s.due(r.Seq))
	a.lastEnd = max(a.lastEnd, since+r.Latency)
	e := &a.eps[rt.kind]
	if r.URL == rt.dropURL {
		e.dropped++
		return
	}
	a.s.inFlight.Add(-1)
	e.requests++
	e.h.record(r.Latency)
	if r.Code == http.StatusOK {
		e.ok++
		a.ok.record(r.Latency)
		return
	}
	a.statuses[int(r.Code)]++
	if r.Code == 0 {
		msg := r.Error
		if _, seen := a.errs[msg]; !seen && len(a.errs) >= maxErrorKinds {
			msg = "(other errors)"
		}
		a.errs[msg]++
	}
	if a.logFailures > 0 {
		a.logFailures--
		_, _ = fmt.Fprintf(a.log, "shoot: failed %s %s: %d %s %q\n", rt.kind, r.URL, r.Code, r.Error, r.Body)
	}
}

func (a *aggregator) summary(cfg *config) results.Summary {
	sum := results.Summary{
		Generator: "shoot", Profile: cfg.profile, TargetRPS: float64(cfg.rate), DurationS: cfg.duration.Seconds(),
		MaxWorkers: cfg.maxWorkers, Wanted: int64(a.s.wanted), ElapsedS: math.Round(a.lastEnd.Seconds()*1000) / 1000,
		Endpoints: map[string]results.Endpoint{}, Statuses: map[string]int64{},
		StartLag: a.lag.latency(), MaxLagMs: float64(cfg.maxLag) / float64(time.Millisecond),
		PeakInFlight: a.s.peak.Load(), Interrupted: a.s.issued.Load() < a.s.wanted,
	}
	var all hist
	for _, k := range a.p.mix.kinds {
		e := &a.eps[k]
		all.merge(&e.h)
		sum.Endpoints[k.String()] = results.Endpoint{
			Requests: e.requests, OK: e.ok, Failed: e.requests - e.ok, Dropped: e.dropped, Latency: e.h.latency(),
		}
		sum.Requests += e.requests
		sum.OK += e.ok
		sum.Dropped += e.dropped
	}
	sum.Failed = sum.Requests - sum.OK
	sum.Latency = all.latency()
	sum.LatencyOK = a.ok.latency()
	if sum.ElapsedS > 0 {
		sum.AchievedRPS = math.Round(float64(sum.Requests)/sum.ElapsedS*100) / 100
	}
	if sum.OK > 0 {
		sum.Statuses["200"] = sum.OK
	}
	for code, n := range a.statuses {
		key := strconv.Itoa(code)
		if code == 0 {
			key = "error"
		}
		sum.Statuses[key] = n
	}
	if len(a.errs) > 0 {
		sum.Errors = a.errs
	}
	sum.SLI = cfg.sli.Evaluate(&sum)
	return sum
}

// newTransport keeps connections alive and reuses them (as many idle ones
// as may be in use), sends no Accept-Encoding, never uses a proxy and fails
// the dropped requests.
func newTransport(cfg *config) *http.Transport {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.maxConns,
		MaxIdleConnsPerHost: cfg.maxConns,
		MaxConnsPerHost:     cfg.maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	tr.RegisterProtocol(droppedScheme, droppedRoundTripper{})
	return tr
}

// run shoots cfg's profile at cfg.base for cfg.duration at cfg.rate, each
// request from a random one of us, and sums the results up. Cancelling ctx
// stops the run early (the summary says it was interrupted).
func run(ctx context.Context, cfg config, us []users.User, log io.Writer) (results.Summary, error) {
	if err := cfg.check(); err != nil {
		return results.Summary{}, err
	}
	p, err := newPlan(cfg.base, cfg.profile, us, rand.IntN)
	if err != nil {
		return results.Summary{}, err
	}
	p.forwardedFor = cfg.forwardedFor
	interval := time.Second / time.Duration(cfg.rate) // as vegeta's pacer computes it
	s := &schedule{interval: interval, wanted: uint64(cfg.duration / interval), maxLag: cfg.maxLag}
	tr := newTransport(&cfg)
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		Timeout:   cfg.timeout,
		// Every answer but a 200 is a failure; a redirect is not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	maxBody := int64(0) // answers are read and discarded
	if cfg.logFailures > 0 {
		maxBody = 200
	}
	// Workers for the steady state at 50 ms per request; vegeta starts more,
	// up to maxWorkers, when they are all busy.
	workers := uint64(min(cfg.maxWorkers, max(10, cfg.rate/20)))
	atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.Workers(workers),
		vegeta.MaxWorkers(uint64(cfg.maxWorkers)), vegeta.MaxBody(maxBody))
	a := &aggregator{p: p, s: s, statuses: map[int]int64{}, errs: map[string]int64{},
		logFailures: cfg.logFailures, log: log}

	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			atk.Stop()
		case <-done:
		}
	}()
	cpu0, err := cpuTime()
	if err != nil {
		return results.Summary{}, err
	}
	s.start = time.Now()
	pacer := limitPacer{ConstantPacer: vegeta.ConstantPacer{Freq: cfg.rate, Per: time.Second}, hits: s.wanted}
	for r := range atk.Attack(targeter(p, s), pacer, 0, "") {
		a.add(r)
	}
	cpu1, err := cpuTime()
	if err != nil {
		return results.Summary{}, err
	}
	close(done)
	<-stopped
	if a.unknown > 0 {
		return results.Summary{}, fmt.Errorf("%d results for requests the plan did not make", a.unknown)
	}
	sum := a.summary(&cfg)
	sum.GeneratorCPUS = math.Round((cpu1-cpu0).Seconds()*1000) / 1000
	return sum, nil
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// errorKinds lists a summary's transport errors, most frequent first.
func errorKinds(errs map[string]int64) []string {
	out := make([]string, 0, len(errs))
	for e := range errs {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if errs[out[i]] != errs[out[j]] {
			return errs[out[i]] > errs[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}
