// Command report turns a load run's k6 summary export and procstat summary
// into Markdown for docs/benchmarks.md and a row of the runs CSV (which the
// chart is drawn from). With -table it prints the rows of a runs CSV.
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
	profile := flag.String("profile", "", "profile name (mixed, info, auth)")
	mode := flag.String("mode", "run", "run or step")
	rate := flag.Float64("rate", 0, "target rate, requests per second")
	k6 := flag.String("k6", "", "k6 --summary-export file")
	proc := flag.String("procstat", "", "procstat summary file (optional)")
	csvOut := flag.String("csv", "", "append the run's row to this CSV")
	table := flag.String("table", "", "print the rows of this runs CSV as Markdown and exit")
	flag.Parse()
	var err error
	if *table != "" {
		err = printTable(os.Stdout, *table)
	} else {
		err = report(os.Stdout, *profile, *mode, *rate, *k6, *proc, *csvOut)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func report(w io.Writer, profile, mode string, rate float64, k6, proc, csvOut string) error {
	o := &out{w: w}
	s, err := results.ReadK6(k6)
	if err != nil {
		return err
	}
	r := results.FromK6(profile, mode, rate, s)
	o.f("\n%s at %.0f req/s (%s): SLI %s\n\n", profile, rate, mode, verdict(r.SLIMet))
	o.line("| target req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | max ms | success | failed | dropped |")
	o.line("|---|---|---|---|---|---|---|---|---|")
	o.f("| %.0f | %.0f | %.1f | %.1f | %.1f | %.0f | %.3f%% | %d | %d |\n",
		r.TargetRPS, r.AchievedRPS, r.P50, r.P99, r.P999, r.Max, r.SuccessPct, r.Failed, r.Dropped)
	var names []string
	for _, n := range []string{"info", "buy", "send", "auth"} {
		if s.Has("http_req_duration{name:" + n + "}") {
			names = append(names, n)
		}
	}
	if len(names) > 1 {
		o.line("\n| endpoint | p50 ms | p99 ms | p99.9 ms |")
		o.line("|---|---|---|---|")
		for _, n := range names {
			m := "http_req_duration{name:" + n + "}"
			o.f("| %s | %.1f | %.1f | %.1f |\n", n, s.Value(m, "med"), s.Value(m, "p(99)"), s.Value(m, "p(99.9)"))
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
var order = []string{"gateway", "auth", "user", "coins", "merch", "info", "postgres", "redis", "kafka", "clickhouse", "k6", "other"}

func printProcs(o *out, p results.Procstat) {
	o.f("\nCPU (%% of one core; %d cores = %d%%) and memory (PSS, MiB) over %.0f s; machine busy %.0f%%, load1 %.1f -> %.1f\n\n",
		p.Cores, p.Cores*100, p.Seconds, p.MachineCPU, p.Load1[0], p.Load1[1])
	o.line("| process | CPU avg % | CPU max % | memory avg MiB | memory max MiB |")
	o.line("|---|---|---|---|---|")
	var sum float64
	for _, g := range order {
		st, ok := p.Groups[g]
		if !ok {
			continue
		}
		sum += st.CPUAvg
		mem := fmt.Sprintf("%.0f | %.0f", st.MemAvg, st.MemMax)
		if g == "other" {
			mem = "- | -"
		}
		o.f("| %s | %.0f | %.0f | %s |\n", g, st.CPUAvg, st.CPUMax, mem)
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
