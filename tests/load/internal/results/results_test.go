package results

import (
	"math"
	"path/filepath"
	"reflect"
	"testing"
)

func sample() Summary {
	return Summary{
		Generator: "shoot", Profile: "mixed", TargetRPS: 20, DurationS: 50, ElapsedS: 50.1, AchievedRPS: 20.5,
		Wanted: 1003, Requests: 1000, OK: 998, Failed: 2, Dropped: 3,
		Latency: Latency{Min: 0.4, Avg: 4.1, P50: 3.6, P90: 9, P99: 27.4, P999: 31.9, Max: 32.4},
		Endpoints: map[string]Endpoint{
			"info": {Requests: 700, OK: 699, Failed: 1, Dropped: 2, Latency: Latency{P50: 3, P99: 20, P999: 25}},
			"buy":  {Requests: 150, OK: 150, Latency: Latency{P50: 5, P99: 30, P999: 31}},
			"send": {Requests: 150, OK: 149, Failed: 1, Dropped: 1, Latency: Latency{P50: 6, P99: 31, P999: 32}},
		},
		Statuses: map[string]int64{"200": 998, "500": 1, "error": 1},
		Errors:   map[string]int64{"timeout": 1},
	}
}

func TestEvaluate(t *testing.T) {
	sli := DefaultSLI()
	for _, tc := range []struct {
		name string
		edit func(*Summary)
		met  bool
	}{
		{"all good", func(s *Summary) { s.OK, s.Failed, s.Dropped = 1000, 0, 0 }, true},
		// 99.99% of 100 000: 10 failures are the whole budget.
		{"failures within budget", func(s *Summary) { s.Requests, s.OK, s.Failed, s.Dropped = 100_000, 99_990, 10, 0 }, true},
		{"one failure too many", func(s *Summary) { s.Requests, s.OK, s.Failed, s.Dropped = 100_000, 99_989, 11, 0 }, false},
		// Dropped requests are failures: 5 failed and 6 dropped miss the budget
		// the 10 failures above met.
		{"dropped count as failures", func(s *Summary) { s.Requests, s.OK, s.Failed, s.Dropped = 99_994, 99_989, 5, 6 }, false},
		{"dropped within budget", func(s *Summary) { s.Requests, s.OK, s.Failed, s.Dropped = 99_995, 99_990, 5, 5 }, true},
		{"p99 at the objective", func(s *Summary) { s.OK, s.Failed, s.Dropped, s.Latency.P99 = 1000, 0, 0, 50 }, true},
		{"p99 above the objective", func(s *Summary) { s.OK, s.Failed, s.Dropped, s.Latency.P99 = 1000, 0, 0, 50.1 }, false},
		{"nothing sent", func(s *Summary) { s.Requests, s.OK, s.Failed, s.Dropped, s.Latency = 0, 0, 0, 0, Latency{} }, false},
		{"interrupted", func(s *Summary) { s.OK, s.Failed, s.Dropped, s.Interrupted = 1000, 0, 0, true }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sample()
			tc.edit(&s)
			r := sli.Evaluate(&s)
			if r.Met != tc.met {
				t.Fatalf("met=%v, want %v (%+v)", r.Met, tc.met, r)
			}
			if r.Met != (len(r.Missed) == 0) {
				t.Errorf("missed %q with met=%v", r.Missed, r.Met)
			}
			if r.P99Ms != s.Latency.P99 || r.Objective != sli {
				t.Errorf("result %+v", r)
			}
		})
	}
}

func TestSummaryRoundTripAndRow(t *testing.T) {
	s := sample()
	s.SLI = DefaultSLI().Evaluate(&s)
	if s.SLI.Met {
		t.Fatal("5 failures of 1003 must miss 99.99%")
	}
	path := filepath.Join(t.TempDir(), "run.shoot.json")
	if err := WriteSummary(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSummary(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, s)
	}

	r := got.Row("step")
	if r.Profile != "mixed" || r.Mode != "step" || r.TargetRPS != 20 || r.AchievedRPS != 20.5 || r.P50 != 3.6 ||
		r.P99 != 27.4 || r.P999 != 31.9 || r.Max != 32.4 || r.Requests != 1000 || r.Failed != 2 || r.Dropped != 3 || r.SLIMet {
		t.Fatalf("row %+v", r)
	}
	// Success counts dropped requests as failures: 998 of 1003.
	if want := 998.0 / 1003 * 100; math.Abs(r.SuccessPct-want) > 1e-9 {
		t.Errorf("success %.4f, want %.4f", r.SuccessPct, want)
	}

	csv := filepath.Join(t.TempDir(), "runs.csv")
	for range 2 {
		if err := AppendCSV(csv, r); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := ReadCSV(csv)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Profile != "mixed" || rows[1].P99 != 27.4 || rows[1].Dropped != 3 || rows[1].SLIMet {
		t.Fatalf("read back %+v", rows)
	}
}

func TestReadSummaryRefusesOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k6.json")
	if err := WriteSummary(path, Summary{Profile: "mixed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSummary(path); err == nil {
		t.Fatal("a summary without generator shoot was accepted")
	}
}
