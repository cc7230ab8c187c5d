package results

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// summary is the shape of k6's --summary-export (trimmed).
const summary = `{"metrics":{
 "http_req_duration":{"med":3.6,"p(99)":27.4,"p(99.9)":31.9,"max":32.4,"thresholds":{"p(99)<=50":false}},
 "http_reqs":{"count":1000,"rate":20.5},
 "ok":{"passes":998,"fails":2,"value":0.998,"thresholds":{"rate>=0.9999":true}},
 "dropped_iterations":{"count":3,"rate":0.1}}}`

func TestFromK6(t *testing.T) {
	var s K6Summary
	if err := json.Unmarshal([]byte(summary), &s); err != nil {
		t.Fatal(err)
	}
	r := FromK6("mixed", "step", 20, s)
	if r.AchievedRPS != 20.5 || r.P50 != 3.6 || r.P99 != 27.4 || r.P999 != 31.9 || r.Requests != 1000 || r.Failed != 2 || r.Dropped != 3 {
		t.Fatalf("row %+v", r)
	}
	// Success counts dropped iterations as failures: 998 of 1003.
	if want := 998.0 / 1003 * 100; r.SuccessPct < want-1e-9 || r.SuccessPct > want+1e-9 {
		t.Errorf("success %.4f, want %.4f", r.SuccessPct, want)
	}
	if r.SLIMet {
		t.Error("a crossed threshold must make the SLI not met")
	}

	path := filepath.Join(t.TempDir(), "runs.csv")
	for range 2 {
		if err := AppendCSV(path, r); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := ReadCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Profile != "mixed" || rows[1].P99 != 27.4 || rows[1].Dropped != 3 || rows[1].SLIMet {
		t.Fatalf("read back %+v", rows)
	}
}
