// Package results reads and writes the load runs' figures: the k6 summary
// export, the procstat summary, and the rows of the benchmarks data file the
// chart is drawn from.
package results

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
)

// Row is one load run (one profile at one target rate).
type Row struct {
	Profile     string
	Mode        string // "run" (a profile's make target) or "step"
	TargetRPS   float64
	AchievedRPS float64
	P50, P99    float64 // milliseconds
	P999, Max   float64
	SuccessPct  float64 // answered 200, of requests sent and dropped
	Requests    int64
	Failed      int64
	Dropped     int64
	SLIMet      bool
}

// Header is the CSV header of Row.
var Header = []string{"profile", "mode", "target_rps", "achieved_rps", "p50_ms", "p99_ms", "p999_ms", "max_ms", "success_pct", "requests", "failed", "dropped", "sli_met"}

// Record renders r as CSV fields.
func (r Row) Record() []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	return []string{r.Profile, r.Mode, f(r.TargetRPS), f(r.AchievedRPS), f(r.P50), f(r.P99), f(r.P999), f(r.Max),
		strconv.FormatFloat(r.SuccessPct, 'f', 4, 64), strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.Failed, 10),
		strconv.FormatInt(r.Dropped, 10), strconv.FormatBool(r.SLIMet)}
}

// ReadCSV reads rows written with Header.
func ReadCSV(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Row
	for i, rec := range recs {
		if i == 0 || len(rec) != len(Header) {
			continue
		}
		num := func(j int) float64 { v, _ := strconv.ParseFloat(rec[j], 64); return v }
		integer := func(j int) int64 { v, _ := strconv.ParseInt(rec[j], 10, 64); return v }
		met, _ := strconv.ParseBool(rec[12])
		out = append(out, Row{Profile: rec[0], Mode: rec[1], TargetRPS: num(2), AchievedRPS: num(3), P50: num(4), P99: num(5),
			P999: num(6), Max: num(7), SuccessPct: num(8), Requests: integer(9), Failed: integer(10), Dropped: integer(11), SLIMet: met})
	}
	return out, nil
}

// AppendCSV appends r to path, writing the header first into a new file.
func AppendCSV(path string, r Row) error {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if os.IsNotExist(statErr) {
		_ = w.Write(Header)
	}
	_ = w.Write(r.Record())
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// K6Summary is the part of k6's --summary-export we read.
type K6Summary struct {
	Metrics map[string]map[string]any `json:"metrics"`
}

// ReadK6 reads a k6 summary export.
func ReadK6(path string) (K6Summary, error) {
	var s K6Summary
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Value returns metric's stat (0 when absent).
func (s K6Summary) Value(metric, stat string) float64 {
	v, _ := s.Metrics[metric][stat].(float64)
	return v
}

// Has reports whether the summary has metric.
func (s K6Summary) Has(metric string) bool { _, ok := s.Metrics[metric]; return ok }

// Crossed reports whether any threshold of the run failed.
func (s K6Summary) Crossed() bool {
	for _, m := range s.Metrics {
		th, _ := m["thresholds"].(map[string]any)
		for _, failed := range th {
			if b, _ := failed.(bool); b {
				return true
			}
		}
	}
	return false
}

// FromK6 makes a Row of a run's summary.
func FromK6(profile, mode string, target float64, s K6Summary) Row {
	r := Row{
		Profile: profile, Mode: mode, TargetRPS: target,
		AchievedRPS: s.Value("http_reqs", "rate"),
		P50:         s.Value("http_req_duration", "med"),
		P99:         s.Value("http_req_duration", "p(99)"),
		P999:        s.Value("http_req_duration", "p(99.9)"),
		Max:         s.Value("http_req_duration", "max"),
		Requests:    int64(s.Value("http_reqs", "count")),
		Failed:      int64(s.Value("ok", "fails")),
		Dropped:     int64(s.Value("dropped_iterations", "count")),
	}
	if total := r.Requests + r.Dropped; total > 0 {
		r.SuccessPct = float64(r.Requests-r.Failed) / float64(total) * 100
	}
	r.SLIMet = !s.Crossed() && r.Requests > 0
	return r
}

// Procstat is the procstat command's summary.
type Procstat struct {
	Seconds    float64               `json:"seconds"`
	Samples    int                   `json:"samples"`
	MachineCPU float64               `json:"machine_cpu_pct_avg"`
	Cores      int                   `json:"cores"`
	Load1      [2]float64            `json:"load1_start_end"`
	Groups     map[string]GroupStats `json:"groups"`
}

// GroupStats are one process group's figures: CPU in percent of one core,
// memory (PSS) in MiB.
type GroupStats struct {
	CPUAvg float64 `json:"cpu_pct_avg"`
	CPUMax float64 `json:"cpu_pct_max"`
	MemAvg float64 `json:"mem_mb_avg"`
	MemMax float64 `json:"mem_mb_max"`
}

// ReadProcstat reads a procstat summary.
func ReadProcstat(path string) (Procstat, error) {
	var p Procstat
	b, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
