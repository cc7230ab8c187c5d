package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/merchshop/merchshop/tests/load/internal/results"
)

// TestReport reads a summary as cmd/shoot writes it and a procstat summary,
// and checks the Markdown and the runs CSV row.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	s := results.Summary{
		Generator: "shoot", Profile: "mixed", TargetRPS: 300, DurationS: 30, ElapsedS: 30.02, AchievedRPS: 299.6,
		Wanted: 9000, Requests: 8994, OK: 8991, Failed: 3, Dropped: 6,
		Latency: results.Latency{P50: 4.21, P99: 31.37, P999: 48.9, Max: 61.2},
		Endpoints: map[string]results.Endpoint{
			"info": {Requests: 6300, OK: 6300, Latency: results.Latency{P50: 3.9, P99: 28.01, P999: 40}},
			"buy":  {Requests: 1350, OK: 1348, Failed: 2, Latency: results.Latency{P50: 5.5, P99: 35, P999: 49}},
			"send": {Requests: 1344, OK: 1342, Failed: 2, Dropped: 6, Latency: results.Latency{P50: 6.04, P99: 37.5, P999: 52}},
		},
	}
	s.SLI = results.DefaultSLI().Evaluate(&s)
	summary := filepath.Join(dir, "run.shoot.json")
	if err := results.WriteSummary(summary, s); err != nil {
		t.Fatal(err)
	}
	proc := filepath.Join(dir, "run.procstat.json")
	p := results.Procstat{Seconds: 27, Samples: 27, MachineCPU: 150, Cores: 2, Load1: [2]float64{1.2, 3.4},
		Groups: map[string]results.GroupStats{
			"gateway": {CPUAvg: 40, CPUMax: 45, MemAvg: 30, MemMax: 31},
			"shoot":   {CPUAvg: 3, CPUMax: 4, MemAvg: 60, MemMax: 61},
			"other":   {CPUAvg: 1, CPUMax: 2},
		}}
	b, _ := json.Marshal(p)
	if err := os.WriteFile(proc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "runs.csv")
	var out bytes.Buffer
	if err := report(&out, "step", summary, proc, csv, "registered with USER_BCRYPT_COST=4"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"\nmixed at 300 req/s (step): SLI NOT met\n\nUsers: registered with USER_BCRYPT_COST=4.\n",
		"| target req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | max ms | success | failed | dropped |\n",
		// 8991 answered 200 of 8994 sent and 6 dropped.
		"| 300 | 300 | 4.2 | 31.4 | 48.9 | 61 | 99.900% | 3 | 6 |\n",
		"| endpoint | p50 ms | p99 ms | p99.9 ms |\n|---|---|---|---|\n| info | 3.9 | 28.0 | 40.0 |\n| buy | 5.5 | 35.0 | 49.0 |\n| send | 6.0 | 37.5 | 52.0 |\n",
		"over 27 s; machine busy 150%, load1 1.2 -> 3.4\n",
		"| gateway | 40 | 45 | 30 | 31 |\n| shoot (the load generator) | 3 | 4 | 60 | 61 |\n| other | 1 | 2 | - | - |\n| all | 44 | | | |\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	rows, err := results.ReadCSV(csv)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
	want := results.Row{Profile: "mixed", Mode: "step", TargetRPS: 300, AchievedRPS: 299.6, P50: 4.21, P99: 31.37, P999: 48.9,
		Max: 61.2, SuccessPct: 99.9, Requests: 8994, Failed: 3, Dropped: 6, SLIMet: false}
	if rows[0] != want {
		t.Errorf("row %+v\nwant %+v", rows[0], want)
	}

	// A profile of one endpoint has no endpoint table.
	s.Endpoints = map[string]results.Endpoint{"info": s.Endpoints["info"]}
	if err := results.WriteSummary(summary, s); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := report(&out, "run", summary, "", "", ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "| endpoint |") {
		t.Errorf("single-endpoint report with an endpoint table:\n%s", out.String())
	}

	out.Reset()
	if err := printTable(&out, csv); err != nil || !strings.Contains(out.String(), "| mixed | step | 300 | 300 | 4.2 | 31.4 | 48.9 | 99.900% | not met |") {
		t.Errorf("table %q: %v", out.String(), err)
	}
}

// TestOverload prints the steps of an overload run and counts the 500s.
func TestOverload(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, s := range []results.Summary{
		{Generator: "shoot", Profile: "mixed", TargetRPS: 1000, ElapsedS: 30, AchievedRPS: 1000, Requests: 30000, OK: 30000,
			LatencyOK: results.Latency{P50: 5, P99: 41.26}, Statuses: map[string]int64{"200": 30000}},
		{Generator: "shoot", Profile: "mixed", TargetRPS: 2000, ElapsedS: 30, AchievedRPS: 1990, Requests: 59700, OK: 39000, Failed: 20700, Dropped: 300,
			LatencyOK: results.Latency{P50: 9, P99: 48}, Statuses: map[string]int64{"200": 39000, "503": 20690, "500": 2, "error": 8}},
	} {
		p := filepath.Join(dir, fmt.Sprintf("step%d.shoot.json", i))
		if err := results.WriteSummary(p, s); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var out bytes.Buffer
	fives, err := printOverload(&out, paths)
	if err != nil {
		t.Fatal(err)
	}
	if fives != 2 {
		t.Errorf("%d 500s, want 2", fives)
	}
	want := "| 1000 | 1000 | 1000 | 5.0 | 41.3 | 0 | 0 | 0 | 0 |\n| 2000 | 1990 | 1300 | 9.0 | 48.0 | 20690 | 2 | 8 | 300 |\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, out.String())
	}
	if _, err := printOverload(&out, nil); err == nil {
		t.Error("no summaries accepted")
	}
}
