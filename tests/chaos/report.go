package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// report writes the run's results as Markdown.
func (s *suite) report(w io.Writer) {
	mode := "full"
	if s.cfg.quick {
		mode = "quick (CHAOS_QUICK=1)"
	}
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	p("# Fault suite, %s, %s mode, run %s\n\n", s.started.UTC().Format("2006-01-02 15:04 UTC"), mode, s.cfg.runID)
	p("%d workload users and %d scenario users; offered load %.0f req/s (67%% GET /api/info, 15%% buy, 15%% sendCoin, 3%% login), "+
		"at most %d in flight; each request retried on 5xx or no answer up to %d attempts (backoff from %s, doubling), "+
		"with the same Idempotency-Key. Merch recovery: MERCH_RECOVERY_AGE=%s, MERCH_RECOVERY_INTERVAL=%s. Took %s; "+
		"1-minute load average %s at the start, %s at the end (2 cores).\n\n",
		len(s.users), len(s.all)-len(s.users), s.cfg.rate, s.cfg.maxInflight, workloadRetries.attempts, workloadRetries.backoff,
		envOr("MERCH_RECOVERY_AGE", "10s (default)"), envOr("MERCH_RECOVERY_INTERVAL", "5s (default)"),
		time.Since(s.started).Round(time.Second), s.loadStart, loadavg())

	if len(s.scenarios) > 0 {
		p("## Purchase saga: kill -9 between the charge and the grant\n\n")
		p("| scenario | first answer | state before the restart | restart took | order completed after the kill | retry (same key) | granted once, charged once |\n|---|---|---|---|---|---|---|\n")
		for _, r := range s.scenarios {
			p("| %s | %s | %s | %s | %s | %s | %s |\n", r.name, cell(r.firstAnswer), r.before, secs(r.restart), secs(r.completed),
				cell(r.retry), verdict(r.inv.ok()))
		}
		p("\nHow each window is forced:\n\n")
		for _, r := range s.scenarios {
			p("- %s: %s.\n", r.name, r.forced)
		}
		p("\n")
	}

	if len(s.faults) > 0 {
		p("## Faults under load\n\n")
		p("Window: from the fault until every request type that needs the broken part was answered 200 again (at least until it was back up). " +
			"Failed: the request's last answer after its retries was 5xx or none. Masked: a 5xx or no answer was retried into a final answer. " +
			"Events drained: from the part being back until no event older than that was left in an outbox. " +
			"History caught up: from the pause of the workload until reconcile agreed (the ClickHouse read model had every transaction).\n\n")
		p("| fault | down -> up | recovered after | events drained | history caught up | requests in window | failed | failed share | masked by retries | failed by type | shed | invariants |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, f := range s.faults {
			rec := "n/a (no request needs it)"
			if f.recoverErr != nil {
				rec = "NOT RECOVERED"
			} else if f.recovered >= 0 {
				rec = secs(f.recovered)
			}
			drained := secs(f.drained)
			if f.drainErr != nil {
				drained = "NOT DRAINED"
			}
			share := 0.0
			if f.stats.requests > 0 {
				share = 100 * float64(f.stats.failed) / float64(f.stats.requests)
			}
			inv := verdict(f.check.ok() && f.err == nil)
			if f.err != nil {
				inv += " (fault: " + cell(f.err.Error()) + ")"
			}
			p("| %s | %s | %s | %s | %s | %d | %d | %.1f%% | %d | %s | %d | %s |\n", f.name, secs(f.up.Sub(f.down)), rec, drained,
				secs(f.check.reconcile), f.stats.requests, f.stats.failed, share, f.stats.masked, byKind(f.stats.failedBy), f.shed, inv)
		}
		p("\n")
	}

	recs := s.rec.all()
	p("## Whole run\n\n| request | total | 200 | 4xx | failed (5xx or none) | retried |\n|---|---|---|---|---|---|\n")
	var tot [5]int
	for k := range numKinds {
		var n [5]int
		for _, r := range recs {
			if r.kind != k {
				continue
			}
			n[0]++
			switch {
			case r.ok():
				n[1]++
			case r.client():
				n[2]++
			default:
				n[3]++
			}
			if r.attempts > 1 {
				n[4]++
			}
		}
		for i := range n {
			tot[i] += n[i]
		}
		p("| %s | %d | %d | %d | %d | %d |\n", k, n[0], n[1], n[2], n[3], n[4])
	}
	p("| all | %d | %d | %d | %d | %d |\n\n", tot[0], tot[1], tot[2], tot[3], tot[4])
	if shed := s.wl.shed.Load(); shed > 0 {
		p("%d arrivals were shed because %d requests were already in flight.\n\n", shed, s.cfg.maxInflight)
	}

	p("## Invariants\n\nChecked after the scenarios and after every fault, once the workload was paused and the system drained, over everything the run did so far:\n\n")
	var last *checkResult
	if n := len(s.faults); n > 0 {
		last = &s.faults[n-1].check
	} else {
		last = s.afterScen
	}
	if last != nil {
		p("| invariant | facts checked (last check) | result over all checks |\n|---|---|---|\n")
		for i, inv := range last.invariants {
			all := true
			for _, c := range s.checks() {
				if i < len(c.invariants) && !c.invariants[i].ok() {
					all = false
				}
			}
			p("| %s | %d | %s |\n", inv.name, inv.checked, verdict(all && inv.ok()))
		}
		p("\nDrain before the last check took %s; ClickHouse reconciled %s after the system was quiet.\n\n",
			secs(last.drain), secs(last.reconcile))
	}
	for _, r := range s.scenarios {
		if !r.inv.ok() {
			p("### FAILED: %s\n\n", r.name)
			for _, d := range r.inv.details {
				p("- %s\n", d)
			}
			p("\n")
		}
	}
	for i, c := range s.checks() {
		for _, inv := range c.invariants {
			if inv.ok() {
				continue
			}
			p("### FAILED after %s: %s (%d)\n\n", s.checkName(i), inv.name, inv.failures)
			for _, d := range inv.details {
				p("- %s\n", d)
			}
			p("\n")
		}
	}
	p("Result: **%s**\n", map[bool]string{true: "PASS", false: "FAIL"}[s.ok()])
}

// checks lists every check in order: after the scenarios, then per fault.
func (s *suite) checks() []checkResult {
	var out []checkResult
	if s.afterScen != nil {
		out = append(out, *s.afterScen)
	}
	for _, f := range s.faults {
		out = append(out, f.check)
	}
	return out
}

func (s *suite) checkName(i int) string {
	if s.afterScen != nil {
		if i == 0 {
			return "the scenarios"
		}
		i--
	}
	return s.faults[i].name
}

func byKind(n [numKinds]int) string {
	var parts []string
	for k := range numKinds {
		if n[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// cell makes text safe for a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
