package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/pkg/postgres"
	"github.com/merchshop/merchshop/pkg/postgres/pgtest"

	pgstore "github.com/merchshop/merchshop/services/coins/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/coins/internal/app"
	"github.com/merchshop/merchshop/services/coins/internal/testdb"
	"github.com/merchshop/merchshop/services/coins/migrations"
)

// totalsDriftSQL counts the rows where the running totals of the history
// differ from the transfers in the ledger summed per (user, direction,
// counterpart), counterpart names included.
const totalsDriftSQL = `SELECT count(*) FROM transfer_totals tt
	FULL JOIN (
	    SELECT to_user_id AS user_id, 1 AS direction, from_user_id AS counterpart_id, sum(amount) AS total
	      FROM transactions WHERE kind = 'transfer' GROUP BY 1, 3
	    UNION ALL
	    SELECT from_user_id, 2, to_user_id, sum(amount) FROM transactions WHERE kind = 'transfer' GROUP BY 1, 3
	) l USING (user_id, direction, counterpart_id)
	LEFT JOIN accounts a ON a.user_id = counterpart_id
	WHERE tt.total IS DISTINCT FROM l.total OR tt.counterpart_name IS DISTINCT FROM a.username`

// The totals check of checkLedger sees a total that drifted and one that
// went missing.
func TestTotalsDriftIsCaught(t *testing.T) {
	e := newEnv(t, 4)
	ctx := ctxT(t)
	alice := e.open(t, "alice")
	e.open(t, "Боб")
	for range 3 {
		if _, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "Боб", Amount: 7, IdempotencyKey: uuid.NewString()}); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.count(t, totalsDriftSQL); n != 0 {
		t.Fatalf("%d rows drifted after honest transfers", n)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE transfer_totals SET total = total + 1 WHERE direction = 1`); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, totalsDriftSQL); n != 1 {
		t.Fatalf("a changed total: %d rows drifted, want 1", n)
	}
	if _, err := e.pool.Exec(ctx, `DELETE FROM transfer_totals WHERE direction = 2`); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, totalsDriftSQL); n != 2 {
		t.Fatalf("a missing total too: %d rows drifted, want 2", n)
	}
}

// A decision whose CommitBy has passed is not committed: nothing of it is
// recorded (the view cache's lease may have run out).
func TestMoveDoesNotCommitAfterCommitBy(t *testing.T) {
	e := newEnv(t, 4)
	ctx := ctxT(t)
	alice, _ := uuid.Parse(e.open(t, "alice"))
	store := pgstore.New(e.pool, 0)
	key := "charge:late"
	err := store.Move(ctx, app.MoveRequest{Key: key, From: alice}, func(_ context.Context, l app.Locked) (app.Decision, error) {
		return app.Decision{
			Verdict: app.WriteMovement,
			Movement: app.Movement{ID: uuid.New(), Kind: events.KindPurchase, Key: key, RequestHash: "h",
				From: alice, Amount: 100, Reason: "pen"},
			CommitBy: time.Now().Add(-time.Second),
		}, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("move after its CommitBy: %v, want the deadline", err)
	}
	if n := e.count(t, `SELECT count(*) FROM transactions WHERE idempotency_key = $1`, key); n != 0 {
		t.Fatal("the late movement was recorded")
	}
	if b := e.balance(t, alice.String()); b != 1000 {
		t.Fatalf("balance %d, want 1000", b)
	}
	e.checkLedger(t)
}

// Many senders to one recipient at once: the recipient is known by name
// until the lock resolves it, so its row is where they queue; a sender
// that lost the race queues for the recipient's stripe on its next try,
// and no transfer runs out of retries.
func TestHotRecipientByName(t *testing.T) {
	e := newEnv(t, 16)
	ctx := ctxT(t)
	e.open(t, "hot")
	const senders, each = 16, 10
	ids := make([]string, senders)
	for i := range ids {
		ids[i] = e.open(t, fmt.Sprintf("sender%d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: id, ToUsername: "hot", Amount: 1, IdempotencyKey: uuid.NewString()}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("transfer to the hot recipient: %v", err)
	}
	o, err := e.svc.Overview(ctx, ids[0])
	if err != nil || len(o.Sent) != 1 || o.Sent[0].Amount != each {
		t.Fatalf("sender's overview %+v %v", o, err)
	}
	var hot string
	if err := e.pool.QueryRow(ctx, `SELECT user_id::text FROM accounts WHERE username = 'hot'`).Scan(&hot); err != nil {
		t.Fatal(err)
	}
	o, err = e.svc.Overview(ctx, hot)
	if err != nil || o.Balance != 1000+senders*each || len(o.Received) != senders {
		t.Fatalf("recipient's overview %+v %v", o, err)
	}
	e.checkLedger(t)
}

// Upgrading a database with history: migration 00003 fills the running
// totals from the transfers recorded before it, and from then on the
// trigger keeps them, for writers that know nothing of them too.
func TestTotalsMigrationKeepsEarlierHistory(t *testing.T) {
	pool := pgtest.Pool(t, testdb.EnvDSN, 4)
	ctx := ctxT(t)
	if err := outbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	for _, name := range []string{"00001_ledger.sql", "00002_refusals.sql"} {
		data, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: data}
	}
	if err := postgres.Migrate(ctx, pool, before, ".", "schema_version"); err != nil {
		t.Fatal(err)
	}
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	names := []string{"alice", "Борис", "中村"}
	// What the previous version wrote: accounts and transfers, no totals.
	write := func(from, to int, amount int64) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO transactions (id, idempotency_key, kind, from_user_id, to_user_id, amount, request_hash)
			VALUES ($1, $2, 'transfer', $3, $4, $5, 'h')`, uuid.New(), uuid.NewString(), ids[from], ids[to], amount); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		if _, err := pool.Exec(ctx, `INSERT INTO accounts (user_id, username, balance) VALUES ($1, $2, 100000)`, id, names[i]); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 1, 500)
	write(0, 1, 700)
	write(1, 0, 100)
	write(2, 0, 300)
	if err := postgres.Migrate(ctx, pool, migrations.FS, ".", "schema_version"); err != nil {
		t.Fatal(err)
	}
	e := &env{pool: pool, svc: app.New(pgstore.New(pool, 0), nil)}
	if n := e.count(t, `SELECT count(*) FROM transfer_totals`); n != 6 {
		t.Fatalf("%d totals after the backfill, want 6", n)
	}
	if n := e.count(t, totalsDriftSQL); n != 0 {
		t.Fatalf("%d totals differ from the history recorded before the migration", n)
	}
	// A writer of the previous version, after the migration.
	write(1, 2, 900)
	if n := e.count(t, totalsDriftSQL); n != 0 {
		t.Fatalf("%d totals differ after a transfer written without them", n)
	}
	o, err := e.svc.Overview(ctx, ids[0].String())
	if err != nil {
		t.Fatal(err)
	}
	want := "{Balance:1000 History:{Received:[{Username:Борис Amount:1} {Username:中村 Amount:3}] Sent:[{Username:Борис Amount:12}]}}"
	if got := fmt.Sprintf("%+v", o); got != want {
		t.Fatalf("overview %s, want %s", got, want)
	}
}
