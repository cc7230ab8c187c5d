// Package reconcile compares the history read model with the coins ledger,
// per user: the number of entries and their sum must match.
package reconcile

import (
	"fmt"
	"io"
	"sort"
)

// MinorPerCoin is the ledger's minor units per whole coin.
const MinorPerCoin = 100

// Totals is a user's number of ledger entries (one per transaction the
// user is part of) and the signed sum of their amounts in minor units.
type Totals struct {
	Count    int64
	SumMinor int64
}

// Input is what the comparison reads.
type Input struct {
	// Ledger: per user, from the coins ledger, transactions before the
	// cutoff.
	Ledger map[string]Totals
	// History: per user, from the read model, the same window (amounts
	// already converted to minor units).
	History map[string]Totals
	// Balances and LedgerAll (every transaction, no cutoff) check the
	// ledger against itself: a balance equals the sum of its entries. Both
	// may be nil to skip that check.
	Balances  map[string]int64
	LedgerAll map[string]Totals
	// Transfers (from the transactions) and Running (the coins service's
	// running totals) check GET /api/info's grouped history against the
	// ledger, line for line. Both may be nil to skip that check.
	Transfers map[Pair]int64
	Running   map[Pair]int64
	// Usernames labels the report (may be nil).
	Usernames map[string]string
}

// Diff is one user's disagreement.
type Diff struct {
	UserID   string
	Username string
	Problem  string
}

// Compare returns every disagreement, sorted by user and problem.
func Compare(in Input) []Diff {
	var diffs []Diff
	add := func(user, format string, args ...any) {
		diffs = append(diffs, Diff{UserID: user, Username: in.Usernames[user], Problem: fmt.Sprintf(format, args...)})
	}
	users := map[string]bool{}
	for u := range in.Ledger {
		users[u] = true
	}
	for u := range in.History {
		users[u] = true
	}
	for u := range users {
		l, h := in.Ledger[u], in.History[u]
		if l.Count != h.Count {
			add(u, "history has %d entries, ledger %d", h.Count, l.Count)
		}
		if l.SumMinor != h.SumMinor {
			add(u, "history sums to %s coins, ledger %s", coins(h.SumMinor), coins(l.SumMinor))
		}
	}
	if in.Balances != nil && in.LedgerAll != nil {
		for u, bal := range in.Balances {
			if sum := in.LedgerAll[u].SumMinor; sum != bal {
				add(u, "balance %s coins, ledger entries sum to %s", coins(bal), coins(sum))
			}
		}
		for u, t := range in.LedgerAll {
			if _, ok := in.Balances[u]; !ok && t.Count > 0 {
				add(u, "ledger has %d entries for a user without an account", t.Count)
			}
		}
	}
	if in.Transfers != nil && in.Running != nil {
		dir := map[int]string{1: "received from", 2: "sent to"}
		for p, sum := range in.Transfers {
			if run := in.Running[p]; run != sum {
				add(p.UserID, "%s %s: running total %s coins, transfers %s", dir[p.Direction], label(in, p.Counterpart), coins(run), coins(sum))
			}
		}
		for p, run := range in.Running {
			if _, ok := in.Transfers[p]; !ok {
				add(p.UserID, "%s %s: running total %s coins, no transfers", dir[p.Direction], label(in, p.Counterpart), coins(run))
			}
		}
	}
	sort.Slice(diffs, func(i, j int) bool {
		if diffs[i].UserID != diffs[j].UserID {
			return diffs[i].UserID < diffs[j].UserID
		}
		return diffs[i].Problem < diffs[j].Problem
	})
	return diffs
}

// label names a user in a problem: the username, else the id.
func label(in Input, user string) string {
	if name := in.Usernames[user]; name != "" {
		return name
	}
	return user
}

// coins formats minor units as coins ("12", "-0.5").
func coins(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	if minor%MinorPerCoin == 0 {
		return fmt.Sprintf("%s%d", sign, minor/MinorPerCoin)
	}
	return fmt.Sprintf("%s%d.%02d", sign, minor/MinorPerCoin, minor%MinorPerCoin)
}

// Print writes the report, one line per difference.
func Print(w io.Writer, diffs []Diff) {
	for _, d := range diffs {
		name := d.Username
		if name == "" {
			name = "?"
		}
		_, _ = fmt.Fprintf(w, "%s (%s): %s\n", d.UserID, name, d.Problem)
	}
}
