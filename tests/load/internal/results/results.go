// Package results reads and writes the load runs' figures: the summary of
// the load generator (cmd/shoot) with the SLI evaluation, the procstat
// summary, and the rows of the benchmarks data file the chart is drawn from.
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

// Summary is a load run as the shoot command writes it: what was asked,
// what was sent and answered, the latency distribution overall and per
// endpoint, and the SLI verdict. Latencies are in milliseconds.
type Summary struct {
	Generator   string  `json:"generator"` // "shoot"
	Profile     string  `json:"profile"`
	TargetRPS   float64 `json:"target_rps"`
	DurationS   float64 `json:"duration_s"`
	ElapsedS    float64 `json:"elapsed_s"` // from the start to the last answer
	AchievedRPS float64 `json:"achieved_rps"`
	MaxWorkers  int     `json:"max_workers"`
	// Wanted is the number of requests the schedule asked for; every one of
	// them was either sent (Requests) or dropped, unless the run was
	// interrupted.
	Wanted   int64 `json:"wanted"`
	Requests int64 `json:"requests"` // sent and answered, or failed in transport
	OK       int64 `json:"ok"`       // answered 200
	Failed   int64 `json:"failed"`   // sent, not answered 200
	// Dropped requests could not start on time (every worker busy, or the
	// generator itself late by more than MaxLagMs): in an open model they
	// are requests the system did not take, so they count as failures.
	Dropped     int64               `json:"dropped"`
	Interrupted bool                `json:"interrupted,omitempty"`
	Latency     Latency             `json:"latency_ms"`
	Endpoints   map[string]Endpoint `json:"endpoints"`
	Statuses    map[string]int64    `json:"statuses"`         // HTTP status of sent requests; "error" without one
	Errors      map[string]int64    `json:"errors,omitempty"` // transport errors (a bounded sample of kinds)
	StartLag    Latency             `json:"start_lag_ms"`     // how late requests started against the schedule
	MaxLagMs    float64             `json:"max_lag_ms"`       // later than this: dropped
	// PeakInFlight is the most requests started and not yet counted in
	// the results at once: about the peak concurrency.
	PeakInFlight int64 `json:"peak_in_flight"`
	// LatencyOK is the latency of the requests answered 200 only: under
	// overload, what the answered clients saw, without the fast refusals.
	LatencyOK Latency `json:"latency_ok_ms"`
	// GeneratorCPUS is the CPU time (user and system) the generator spent
	// from its first request to its last answer.
	GeneratorCPUS float64   `json:"generator_cpu_s"`
	SLI           SLIResult `json:"sli"`
}

// GeneratorCPUPerRequestMs is the generator's CPU time per request sent or
// dropped, in milliseconds (0 for an empty run).
func (s *Summary) GeneratorCPUPerRequestMs() float64 {
	if n := s.Requests + s.Dropped; n > 0 {
		return s.GeneratorCPUS * 1000 / float64(n)
	}
	return 0
}

// Latency is a distribution's figures in milliseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Avg  float64 `json:"avg"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// Endpoint is one endpoint's share of a run.
type Endpoint struct {
	Requests int64   `json:"requests"`
	OK       int64   `json:"ok"`
	Failed   int64   `json:"failed"`
	Dropped  int64   `json:"dropped"`
	Latency  Latency `json:"latency_ms"`
}

// SLI is the objective a run is judged by: p99 of all requests at most
// P99Ms, and at least Success (a fraction) of the requests answered 200,
// dropped requests counting as failures.
type SLI struct {
	P99Ms   float64 `json:"p99_ms_max"`
	Success float64 `json:"success_min"`
}

// DefaultSLI is the project's objective: p99 <= 50 ms, 99.99% answered 200.
func DefaultSLI() SLI { return SLI{P99Ms: 50, Success: 0.9999} }

// SLIResult is an SLI with a run's figures and the verdict.
type SLIResult struct {
	Objective SLI      `json:"objective"`
	P99Ms     float64  `json:"p99_ms"`
	Success   float64  `json:"success"` // OK / (Requests + Dropped)
	Met       bool     `json:"met"`
	Missed    []string `json:"missed,omitempty"` // why not, when not met
}

// SuccessRate is the share of the run's requests answered 200, counting
// dropped ones as failures (0 for an empty run).
func (s *Summary) SuccessRate() float64 {
	if total := s.Requests + s.Dropped; total > 0 {
		return float64(s.OK) / float64(total)
	}
	return 0
}

// Evaluate judges s by the objective. A run without a single answered
// request does not meet it; an interrupted run does not either.
func (o SLI) Evaluate(s *Summary) SLIResult {
	r := SLIResult{Objective: o, P99Ms: s.Latency.P99, Success: s.SuccessRate()}
	if s.Requests == 0 {
		r.Missed = append(r.Missed, "no request was sent")
	}
	if s.Latency.P99 > o.P99Ms {
		r.Missed = append(r.Missed, fmt.Sprintf("p99 %.1f ms > %.0f ms", s.Latency.P99, o.P99Ms))
	}
	if r.Success < o.Success {
		r.Missed = append(r.Missed, fmt.Sprintf("success %.4f%% < %.4f%% (%d failed, %d dropped of %d)",
			r.Success*100, o.Success*100, s.Failed, s.Dropped, s.Requests+s.Dropped))
	}
	if s.Interrupted {
		r.Missed = append(r.Missed, "the run was interrupted")
	}
	r.Met = len(r.Missed) == 0
	return r
}

// WriteSummary writes s as indented JSON.
func WriteSummary(path string, s Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	return nil
}

// ReadSummary reads a summary the shoot command wrote.
func ReadSummary(path string) (Summary, error) {
	var s Summary
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("summary: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	if s.Generator != "shoot" {
		return s, fmt.Errorf("%s: not a shoot summary (generator %q)", path, s.Generator)
	}
	return s, nil
}

// Goodput is the rate of requests answered 200, per second of the run (0
// for an empty run).
func (s *Summary) Goodput() float64 {
	if s.ElapsedS <= 0 {
		return 0
	}
	return float64(s.OK) / s.ElapsedS
}

// Row makes the runs CSV row of a run.
func (s *Summary) Row(mode string) Row {
	return Row{
		Profile: s.Profile, Mode: mode, TargetRPS: s.TargetRPS, AchievedRPS: s.AchievedRPS,
		P50: s.Latency.P50, P99: s.Latency.P99, P999: s.Latency.P999, Max: s.Latency.Max,
		SuccessPct: s.SuccessRate() * 100,
		Requests:   s.Requests, Failed: s.Failed, Dropped: s.Dropped,
		SLIMet: s.SLI.Met,
	}
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
