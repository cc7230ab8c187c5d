package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"
)

// suite is one run.
type suite struct {
	cfg       config
	c         *client
	admin     *client
	db        *dbs
	rec       *recorder
	wl        *workload
	log       *log.Logger
	scriptLog io.Writer

	users          []*user // the workload's
	all            []*user // the workload's and the scenarios'
	ids            []string
	byID           map[string]*user
	scenarioOrders []scenarioOrder

	started   time.Time
	loadStart string // /proc/loadavg's 1-minute figure at the start
	scenarios []scenarioResult
	afterScen *checkResult
	faults    []faultResult
}

// faultResult is what one fault did.
type faultResult struct {
	key, name        string
	err              error
	inject, down, up time.Time
	recovered        time.Duration // down -> every dependent request type answered 200; <0: none depends
	recoverErr       error
	drained          time.Duration // up -> no event older than up left in an outbox
	drainErr         error
	stats            windowStats
	shed             int64 // arrivals not sent (too many in flight) from the fault to the check
	check            checkResult
}

// windowStats counts the requests that started while a fault was acting
// (from the fault until it was recovered).
type windowStats struct {
	requests, failed, masked int
	failedBy                 [numKinds]int
	requestsBy               [numKinds]int
}

func (s *suite) seed(ctx context.Context, names []string) ([]*user, error) {
	users := make([]*user, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, 6)
	var wg sync.WaitGroup
	policy := retries{attempts: 12, backoff: 300 * time.Millisecond, limited: true, maxWait: 10 * time.Second}
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			u := &user{idx: i, name: name, password: "pw-" + s.cfg.runID}
			a, _, _ := policy.do(ctx, func() answer { return s.c.login(ctx, u) })
			if a.code != 200 {
				errs[i] = fmt.Errorf("register %s: %s", name, a)
				return
			}
			tok, sub, err := tokenOf(a)
			if err != nil {
				errs[i] = err
				return
			}
			u.token, u.id = tok, sub
			users[i] = u
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return users, nil
}

func (s *suite) setup(ctx context.Context) error {
	if err := s.waitReady(ctx); err != nil {
		return fmt.Errorf("the system is not running (start it with make run): %w", err)
	}
	names := make([]string, s.cfg.users)
	for i := range names {
		names[i] = fmt.Sprintf("chaos%s-%03d", s.cfg.runID, i)
	}
	t0 := time.Now()
	users, err := s.seed(ctx, names)
	if err != nil {
		return err
	}
	s.users = users
	var extra []string
	for _, sc := range s.scenarioList() {
		if s.selected(sc.key) {
			extra = append(extra, fmt.Sprintf("chaos%s-%s", s.cfg.runID, sc.key))
		}
	}
	more, err := s.seed(ctx, extra)
	if err != nil {
		return err
	}
	s.all = append(append([]*user(nil), users...), more...)
	s.byID = map[string]*user{}
	for _, u := range s.all {
		s.ids = append(s.ids, u.id)
		s.byID[u.id] = u
	}
	s.log.Printf("registered %d users in %s", len(s.all), time.Since(t0).Round(time.Millisecond))
	return nil
}

func (s *suite) selected(key string) bool { return s.cfg.only == nil || s.cfg.only[key] }

// run does the whole suite; the workload runs between the faults' checks.
func (s *suite) run(ctx context.Context) error {
	s.started = time.Now()
	s.loadStart = loadavg()
	if err := s.setup(ctx); err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	s.wl = &workload{c: s.c, rec: s.rec, users: s.users, runID: s.cfg.runID, rate: s.cfg.rate, max: int64(s.cfg.maxInflight), paused: true}
	done := make(chan struct{})
	go func() { s.wl.run(wctx); close(done) }()
	defer func() { stop(); <-done }()

	// The saga scenarios, one at a time on a quiet system.
	extra := s.all[len(s.users):]
	i := 0
	for _, sc := range s.scenarioList() {
		if !s.selected(sc.key) {
			continue
		}
		s.log.Printf("scenario %s: %s", sc.key, sc.name)
		r := s.runScenario(ctx, sc, extra[i])
		i++
		s.log.Printf("scenario %s: first answer %s; %s; completed %s after the kill; retry %s; %s",
			sc.key, r.firstAnswer, r.before, r.completed.Round(time.Millisecond), r.retry, verdict(r.inv.ok()))
		s.scenarios = append(s.scenarios, r)
	}
	if len(s.scenarios) > 0 {
		c := s.check(ctx)
		s.afterScen = &c
		s.log.Printf("after the scenarios: invariants %s", verdict(c.ok()))
	}

	for _, f := range s.faultList() {
		if !s.selected(f.key) {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := s.runFault(ctx, f)
		s.faults = append(s.faults, r)
	}
	return nil
}

func (s *suite) runFault(ctx context.Context, f fault) faultResult {
	r := faultResult{key: f.key, name: f.name}
	s.wl.resume()
	s.hold(ctx, s.cfg.baseline) // load before the fault
	r.inject = time.Now()
	shed0 := s.wl.shed.Load()
	s.log.Printf("%s", f.name)
	r.down, r.up, r.err = f.act(ctx)
	if r.err != nil {
		s.log.Printf("%s failed: %v; healing", f.name, r.err)
		s.heal(ctx)
		r.up = time.Now()
		if r.down.IsZero() {
			r.down = r.inject
		}
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.recovered, r.recoverErr = s.waitRecovered(ctx, f.deps, r.down)
	}()
	go func() {
		defer wg.Done()
		err := waitFor(ctx, s.cfg.deadline, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
			n, err := s.db.backlog(ctx, r.up)
			return err == nil && n == 0, err
		})
		r.drained, r.drainErr = time.Since(r.up), err
	}()
	wg.Wait()
	s.hold(ctx, s.cfg.post) // load after recovery

	end := r.up
	if r.recovered > 0 && r.down.Add(r.recovered).After(end) {
		end = r.down.Add(r.recovered)
	}
	if r.recoverErr != nil {
		end = time.Now()
	}
	if err := s.wl.pause(ctx, 60*time.Second); err != nil {
		s.log.Printf("workload did not pause: %v", err)
	}
	r.stats = statsOf(s.rec.all(), r.inject, end)
	r.shed = s.wl.shed.Load() - shed0
	r.check = s.check(ctx)
	rec := "n/a"
	if r.recovered >= 0 {
		rec = r.recovered.Round(time.Millisecond).String()
	}
	s.log.Printf("%s: down->up %s, recovered %s, events drained %s, %d/%d requests failed, invariants %s%s",
		f.name, r.up.Sub(r.down).Round(time.Millisecond), rec, r.drained.Round(time.Millisecond),
		r.stats.failed, r.stats.requests, verdict(r.check.ok()), failedList(r.check))
	return r
}

// waitRecovered waits until each request type in deps has been answered 200
// for a request started after down, and returns the longest wait.
func (s *suite) waitRecovered(ctx context.Context, deps []kind, down time.Time) (time.Duration, error) {
	if len(deps) == 0 {
		return -1, nil
	}
	var worst time.Duration
	err := waitFor(ctx, s.cfg.deadline, 50*time.Millisecond, func(context.Context) (bool, error) {
		worst = 0
		for _, k := range deps {
			t, ok := s.rec.firstOK(k, down)
			if !ok {
				return false, nil
			}
			worst = max(worst, t.Sub(down))
		}
		return true, nil
	})
	return worst, err
}

func statsOf(recs []record, from, to time.Time) windowStats {
	var w windowStats
	for _, r := range recs {
		if r.start.Before(from) || r.start.After(to) {
			continue
		}
		w.requests++
		w.requestsBy[r.kind]++
		if r.failure() {
			w.failed++
			w.failedBy[r.kind]++
		} else if r.failed > 0 {
			w.masked++
		}
	}
	return w
}

// hold lets the workload run for d (a duration of load, not a wait on a
// condition).
func (s *suite) hold(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func verdict(ok bool) string {
	if ok {
		return "OK"
	}
	return "FAIL"
}

func failedList(c checkResult) string {
	if f := c.failed(); len(f) > 0 {
		return fmt.Sprintf(" (%v)", f)
	}
	return ""
}

// ok reports whether every scenario, fault and check passed.
func (s *suite) ok() bool {
	for _, r := range s.scenarios {
		if !r.inv.ok() {
			return false
		}
	}
	if s.afterScen != nil && !s.afterScen.ok() {
		return false
	}
	for _, f := range s.faults {
		if f.err != nil || f.recoverErr != nil || f.drainErr != nil || !f.check.ok() {
			return false
		}
	}
	return len(s.faults)+len(s.scenarios) > 0
}

// loadavg is the machine's 1-minute load average ("?" when unknown): other
// work on the machine skews the figures.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
