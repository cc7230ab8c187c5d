// Command report turns a load run's summary (written by cmd/shoot) and
// procstat summary into Markdown for docs/benchmarks.md and a row of the
// runs CSV (which the chart is drawn from). With -table it prints the rows
// of a runs CSV; with -overload, the steps of an overload run (the
// summaries given as arguments) and exits 3 when any request was answered
// 500.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/merchshop/merchshop/tests/load/internal/results"
)

func main() {
	mode := flag.String("mode", "run", "run, step, sweep or pprof")
	summary := flag.String("summary", "", "the run's summary (cmd/shoot -summary)")
	proc := flag.String("procstat", "", "procstat summary file (optional)")
	csvOut := flag.String("csv", "", "append the run's row to this CSV")
	table := flag.String("table", "", "print the rows of this runs CSV as Markdown and exit")
	users := flag.String("users", "", "how the users were registered (printed under the title, e.g. their bcrypt cost)")
	overload := flag.Bool("overload", false, "print the overload table of the summaries given as arguments; exit 3 when any was answered 500")
	flag.Parse()
	var err error
	switch {
	case *overload:
		var fives int64
		fives, err = printOverload(os.Stdout, flag.Args())
		if err == nil && fives > 0 {
			fmt.Fprintf(os.Stderr, "report: %d requests answered 500 under overload (want 503s only)\n", fives)
			os.Exit(3)
		}
	case *table != "":
		err = printTable(os.Stdout, *table)
	case *summary == "":
		err = fmt.Errorf("-summary or -table is required")
	default:
		err = report(os.Stdout, *mode, *summary, *proc, *csvOut, *users)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func report(w io.Writer, mode, summary, proc, csvOut, users string) error {
	o := &out{w: w}
	s, err := results.ReadSummary(summary)
	if err != nil {
		return err
	}
	r := s.Row(mode)
	o.f("\n%s at %.0f req/s (%s): SLI %s\n\n", r.Profile, r.TargetRPS, mode, verdict(r.SLIMet))
	if users != "" {
		o.f("Users: %s.\n\n", users)
	}
	o.line("| target req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | max ms | success | failed | dropped |")
	o.line("|---|---|---|---|---|---|---|---|---|")
	o.f("| %.0f | %.0f | %.1f | %.1f | %.1f | %.0f | %.3f%% | %d | %d |\n",
		r.TargetRPS, r.AchievedRPS, r.P50, r.P99, r.P999, r.Max, r.SuccessPct, r.Failed, r.Dropped)
	var names []string
	for _, n := range []string{"info", "buy", "send", "auth"} {
		if _, ok := s.Endpoints[n]; ok {
			names = append(names, n)
		}
	}
	if len(names) > 1 {
		o.line("\n| endpoint | p50 ms | p99 ms | p99.9 ms |")
		o.line("|---|---|---|---|")
		for _, n := range names {
			l := s.Endpoints[n].Latency
			o.f("| %s | %.1f | %.1f | %.1f |\n", n, l.P50, l.P99, l.P999)
		}
	}
	if proc != "" {
		p, err := results.ReadProcstat(proc)
		if err != nil {
			return err
		}
		printProcs(o, p)
	}
	if csvOut != "" {
		if err := results.AppendCSV(csvOut, r); err != nil {
			return err
		}
	}
	return o.err
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

// order lists the process groups as the tables show them.
func order() []string {
	return []string{"gateway", "auth", "user", "coins", "merch", "info", "postgres", "redis", "kafka", "clickhouse", "shoot", "other"}
}

// label is how a process group's row is named.
func label(group string) string {
	if group == "shoot" {
		return "shoot (the load generator)"
	}
	return group
}

func printProcs(o *out, p results.Procstat) {
	o.f("\nCPU (%% of one core; %d cores = %d%%) and memory (PSS, MiB) over %.0f s; machine busy %.0f%%, load1 %.1f -> %.1f\n\n",
		p.Cores, p.Cores*100, p.Seconds, p.MachineCPU, p.Load1[0], p.Load1[1])
	o.line("| process | CPU avg % | CPU max % | memory avg MiB | memory max MiB |")
	o.line("|---|---|---|---|---|")
	var sum float64
	for _, g := range order() {
		st, ok := p.Groups[g]
		if !ok {
			continue
		}
		sum += st.CPUAvg
		mem := fmt.Sprintf("%.0f | %.0f", st.MemAvg, st.MemMax)
		if g == "other" {
			mem = "- | -"
		}
		o.f("| %s | %.0f | %.0f | %s |\n", label(g), st.CPUAvg, st.CPUMax, mem)
	}
	o.f("| all | %.0f | | | |\n", sum)
}

func printTable(w io.Writer, path string) error {
	o := &out{w: w}
	rows, err := results.ReadCSV(path)
	if err != nil {
		return err
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Profile != rows[j].Profile {
			return rows[i].Profile < rows[j].Profile
		}
		return rows[i].TargetRPS < rows[j].TargetRPS
	})
	o.line("| profile | mode | target req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | success | SLI |")
	o.line("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		o.f("| %s | %s | %.0f | %.0f | %.1f | %.1f | %.1f | %.3f%% | %s |\n", r.Profile, r.Mode, r.TargetRPS,
			r.AchievedRPS, r.P50, r.P99, r.P999, r.SuccessPct, strings.ToLower(verdict(r.SLIMet)))
	}
	return o.err
}

// printOverload prints one row per overload step (a summary each, in the
// order given): the goodput (answers 200 a second), the latency of the
// 200s, and how the rest was answered. It returns the number of 500s.
func printOverload(w io.Writer, summaries []string) (int64, error) {
	if len(summaries) == 0 {
		return 0, fmt.Errorf("-overload needs the summaries of the steps as arguments")
	}
	o := &out{w: w}
	o.line("| target req/s | sent req/s | goodput (200/s) | p50 of 200s ms | p99 of 200s ms | 503 | 500 | other failures | dropped |")
	o.line("|---|---|---|---|---|---|---|---|---|")
	var fives int64
	for _, path := range summaries {
		s, err := results.ReadSummary(path)
		if err != nil {
			return fives, err
		}
		unavailable, internal := s.Statuses["503"], s.Statuses["500"]
		fives += internal
		o.f("| %.0f | %.0f | %.0f | %.1f | %.1f | %d | %d | %d | %d |\n", s.TargetRPS, s.AchievedRPS, s.Goodput(),
			s.LatencyOK.P50, s.LatencyOK.P99, unavailable, internal, s.Failed-unavailable-internal, s.Dropped)
	}
	return fives, o.err
}

// out writes Markdown and keeps the first write error.
type out struct {
	w   io.Writer
	err error
}

func (o *out) f(format string, args ...any) {
	if o.err == nil {
		_, o.err = fmt.Fprintf(o.w, format, args...)
	}
}

func (o *out) line(s string) { o.f("%s\n", s) }
