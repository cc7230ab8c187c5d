package reconcile

import (
	"bytes"
	"strings"
	"testing"
)

func TestCompareAgreeing(t *testing.T) {
	in := Input{
		Ledger:    map[string]Totals{"a": {3, 95000}, "b": {2, 105000}},
		History:   map[string]Totals{"a": {3, 95000}, "b": {2, 105000}},
		Balances:  map[string]int64{"a": 95000, "b": 105000, "c": 0},
		LedgerAll: map[string]Totals{"a": {3, 95000}, "b": {2, 105000}},
	}
	if d := Compare(in); len(d) != 0 {
		t.Fatalf("diffs = %v", d)
	}
}

func TestCompareFindsEveryKind(t *testing.T) {
	in := Input{
		Ledger: map[string]Totals{
			"a": {3, 95000},  // one entry missing from history
			"b": {2, 105000}, // sum differs
			"c": {1, 100000}, // absent from history
		},
		History: map[string]Totals{
			"a": {2, 100000},
			"b": {2, 104950},
			"d": {1, 5000}, // not in the ledger
		},
		Balances:  map[string]int64{"a": 95000, "b": 100000, "c": 100000},
		LedgerAll: map[string]Totals{"a": {3, 95000}, "b": {2, 105000}, "c": {1, 100000}, "e": {1, 1}},
		Usernames: map[string]string{"a": "alice"},
	}
	diffs := Compare(in)
	want := []string{
		"a: history has 2 entries, ledger 3",
		"a: history sums to 1000 coins, ledger 950",
		"b: balance 1000 coins, ledger entries sum to 1050",
		"b: history sums to 1049.50 coins, ledger 1050",
		"c: history has 0 entries, ledger 1",
		"c: history sums to 0 coins, ledger 1000",
		"d: history has 1 entries, ledger 0",
		"d: history sums to 50 coins, ledger 0",
		"e: ledger has 1 entries for a user without an account",
	}
	var got []string
	for _, d := range diffs {
		got = append(got, d.UserID+": "+d.Problem)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var buf bytes.Buffer
	Print(&buf, diffs[:1])
	if buf.String() != "a (alice): history has 2 entries, ledger 3\n" {
		t.Fatalf("print = %q", buf.String())
	}
}

func TestCoinsFormat(t *testing.T) {
	for minor, want := range map[int64]string{0: "0", 100: "1", -250: "-2.50", 5: "0.05", 123456: "1234.56"} {
		if got := coins(minor); got != want {
			t.Errorf("coins(%d) = %q, want %q", minor, got, want)
		}
	}
}
