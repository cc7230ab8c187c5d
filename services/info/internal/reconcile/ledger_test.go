package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/postgres/pgtest"
)

// TestReadLedger runs the ledger queries on a fabricated copy of the columns
// the tool reads, in a fresh schema of the coins test database (the real
// tables belong to the coins service and are not created here).
func TestReadLedger(t *testing.T) {
	pool := pgtest.Pool(t, "COINS_TEST_DATABASE_URL", 2)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE accounts (user_id UUID PRIMARY KEY, username TEXT NOT NULL, balance BIGINT NOT NULL)`,
		`CREATE TABLE transactions (id UUID PRIMARY KEY, kind TEXT NOT NULL, from_user_id UUID, to_user_id UUID,
			amount BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL)`,
		`CREATE TABLE transfer_totals (user_id UUID NOT NULL, direction SMALLINT NOT NULL, counterpart_id UUID NOT NULL,
			total BIGINT NOT NULL)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob := uuid.NewString(), uuid.NewString()
	old := time.Now().Add(-time.Hour)
	recent := time.Now()
	ins := func(kind string, from, to any, amount int64, at time.Time) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO transactions (id, kind, from_user_id, to_user_id, amount, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			uuid.NewString(), kind, from, to, amount, at); err != nil {
			t.Fatal(err)
		}
	}
	ins("grant", nil, alice, 100000, old)
	ins("grant", nil, bob, 100000, old)
	ins("transfer", alice, bob, 3000, old)
	ins("purchase", alice, nil, 8000, old)
	ins("transfer", bob, alice, 500, recent) // after the cutoff
	if _, err := pool.Exec(ctx, `INSERT INTO accounts VALUES ($1, 'alice', 89500), ($2, 'bob', 102500)`, alice, bob); err != nil {
		t.Fatal(err)
	}
	// bob's running total of what he sent alice is off by one coin.
	if _, err := pool.Exec(ctx, `INSERT INTO transfer_totals VALUES ($1, 2, $2, 3000), ($2, 1, $1, 3000), ($2, 2, $1, 600), ($1, 1, $2, 500)`,
		alice, bob); err != nil {
		t.Fatal(err)
	}

	l, err := ReadLedger(ctx, pool, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if l.Before[alice] != (Totals{3, 89000}) || l.Before[bob] != (Totals{2, 103000}) {
		t.Fatalf("before = %+v", l.Before)
	}
	if l.All[alice] != (Totals{4, 89500}) || l.All[bob] != (Totals{3, 102500}) {
		t.Fatalf("all = %+v", l.All)
	}
	if l.Usernames[alice] != "alice" || l.Balances[bob] != 102500 {
		t.Fatalf("accounts = %v %v", l.Usernames, l.Balances)
	}
	in := Input{Ledger: l.Before, LedgerAll: l.All, Balances: l.Balances, Usernames: l.Usernames,
		History: map[string]Totals{alice: {3, 89000}, bob: {2, 103000}}}
	if d := Compare(in); len(d) != 0 {
		t.Fatalf("diffs = %v", d)
	}
	in.Transfers, in.Running = l.Transfers, l.Running
	d := Compare(in)
	if len(d) != 1 || d[0].UserID != bob || d[0].Problem != "sent to alice: running total 6 coins, transfers 5" {
		t.Fatalf("diffs with the running totals = %v, want bob's line to alice", d)
	}
}
