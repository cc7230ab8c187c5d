package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/merchshop/merchshop/services/coins/internal/app"
)

// A refusal for insufficient funds is the outcome of its key, as final as
// a payment: the same request answers it again however the balance moved
// since, and nothing is charged.
func TestRefusalIsFinalForItsKey(t *testing.T) {
	e := newEnv(t, 8)
	ctx := ctxT(t)
	alice := e.open(t, "alice")
	e.open(t, "bob")

	charge := app.ChargeCmd{UserID: alice, Amount: 1200, IdempotencyKey: "order:o1", Reason: "hoody"}
	if _, err := e.svc.Charge(ctx, charge); !errors.Is(err, app.ErrInsufficientFunds) {
		t.Fatalf("first charge: %v, want insufficient funds", err)
	}
	send := app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 1300, IdempotencyKey: "t1"}
	if _, err := e.svc.Transfer(ctx, send); !errors.Is(err, app.ErrInsufficientFunds) {
		t.Fatalf("first transfer: %v, want insufficient funds", err)
	}
	// The user is paid enough for both.
	if _, err := e.svc.Credit(ctx, app.ChargeCmd{UserID: alice, Amount: 2000, IdempotencyKey: "topup:1"}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := e.svc.Charge(ctx, charge); !errors.Is(err, app.ErrInsufficientFunds) {
			t.Errorf("charge again (%d): %v, want the first refusal", i, err)
		}
		if _, err := e.svc.Transfer(ctx, send); !errors.Is(err, app.ErrInsufficientFunds) {
			t.Errorf("transfer again (%d): %v, want the first refusal", i, err)
		}
	}
	if b := e.balance(t, alice); b != 3000 {
		t.Errorf("balance = %d, want 3000 (nothing charged)", b)
	}
	if n := e.count(t, `SELECT count(*) FROM transactions WHERE kind IN ('purchase', 'transfer')`); n != 0 {
		t.Errorf("%d payments recorded for refused keys", n)
	}
	if n := e.count(t, `SELECT count(*) FROM refusals WHERE from_user_id = $1 AND code = 'insufficient_funds'`, alice); n != 2 {
		t.Errorf("refusals = %d, want 2", n)
	}
	if n := e.count(t, `SELECT count(*) FROM outbox`); n != 3 {
		t.Errorf("outbox rows = %d, want 3 (2 grants, 1 credit): a refusal is no event", n)
	}

	// The same key for a different request is the fingerprint mismatch, as
	// for a recorded payment.
	for name, err := range map[string]error{
		"charge, other amount": func() error {
			_, err := e.svc.Charge(ctx, app.ChargeCmd{UserID: alice, Amount: 5, IdempotencyKey: "order:o1"})
			return err
		}(),
		"transfer, other amount": func() error {
			_, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 5, IdempotencyKey: "t1"})
			return err
		}(),
	} {
		if !errors.Is(err, app.ErrKeyReused) {
			t.Errorf("%s: %v, want ErrKeyReused", name, err)
		}
	}
	// A new key is a new request, and now it is paid.
	if _, err := e.svc.Charge(ctx, app.ChargeCmd{UserID: alice, Amount: 1200, IdempotencyKey: "order:o2", Reason: "hoody"}); err != nil {
		t.Errorf("new key: %v", err)
	}
	if b := e.balance(t, alice); b != 1800 {
		t.Errorf("balance = %d, want 1800", b)
	}

	// Refusals are final in the database too.
	for _, q := range []string{`UPDATE refusals SET amount = 1`, `DELETE FROM refusals`, `TRUNCATE refusals`} {
		if _, err := e.pool.Exec(ctx, q); err == nil {
			t.Errorf("%s was accepted", q)
		}
	}
	e.checkLedger(t)
}

// lockWaiters counts the backends waiting, directly or in a queue behind
// other waiters, for a lock that pid holds.
func (e *env) lockWaiters(ctx context.Context, pid uint32) (int, error) {
	var n int
	err := e.pool.QueryRow(ctx, `
		WITH RECURSIVE w(pid) AS (
		    SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))
		    UNION
		    SELECT a.pid FROM pg_stat_activity a JOIN w ON w.pid = ANY(pg_blocking_pids(a.pid))
		) SELECT count(*) FROM w`, pid).Scan(&n)
	return n, err
}

// waitForWaiters waits until n backends queue for pid's locks.
func (e *env) waitForWaiters(t *testing.T, ctx context.Context, pid uint32, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := e.lockWaiters(ctx, pid)
		if err != nil {
			t.Fatalf("waiting for %d lock waiters (have %d): %v", n, got, err)
		}
		if got >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %d lock waiters: %v (have %d)", n, ctx.Err(), got)
		case <-tick.C:
		}
	}
}

// holdAccount locks the account's row in a transaction of its own and
// returns the backend pid and the function that releases it (commit,
// without changing the row).
func (e *env) holdAccount(t *testing.T, ctx context.Context, userID string) (uint32, func()) {
	t.Helper()
	tx, err := e.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pid uint32
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE`, userID); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if err := tx.Commit(ctx); err != nil {
				t.Errorf("release the account: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return pid, release
}

// TestSameKeyQueuedBehindRefusalAcrossReplicas builds, deterministically,
// the saga's race on replicas where only the database serialises them: a
// charge that will be refused is first in the queue for the payer's row,
// then come, in the case's order, a top-up that makes the charge
// affordable and a second request with the same key whose snapshot
// predates the refusal. The second request must answer the refusal (the
// same request) or the fingerprint mismatch (a different request with the
// key), and never pay.
func TestSameKeyQueuedBehindRefusalAcrossReplicas(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second int64    // the amount the second request asks for
		order  []string // the queue behind the first charge
		want   error
	}{
		// Without the refusal recorded the second request, retried after
		// the top-up, would pay: the bug this guards against.
		{"same request after the top-up", 1200, []string{"top-up", "second"}, app.ErrInsufficientFunds},
		{"same request before the top-up", 1200, []string{"second", "top-up"}, app.ErrInsufficientFunds},
		// This one could pay even before the top-up: only the refusal's
		// write to the payer's row makes it see that the key is taken.
		{"different request before the top-up", 900, []string{"second", "top-up"}, app.ErrKeyReused},
		{"different request after the top-up", 900, []string{"top-up", "second"}, app.ErrKeyReused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 8)
			ctx := ctxT(t)
			alice := e.open(t, "alice")
			r := e.replicas(3)
			calls := map[string]func() error{
				"first": func() error {
					_, err := r[0].Charge(ctx, app.ChargeCmd{UserID: alice, Amount: 1200, IdempotencyKey: "order:o1"})
					return err
				},
				"second": func() error {
					_, err := r[1].Charge(ctx, app.ChargeCmd{UserID: alice, Amount: tc.second, IdempotencyKey: "order:o1"})
					return err
				},
				"top-up": func() error {
					_, err := r[2].Credit(ctx, app.ChargeCmd{UserID: alice, Amount: 1000, IdempotencyKey: "topup:1"})
					return err
				},
			}

			pid, release := e.holdAccount(t, ctx, alice)
			type result struct {
				name string
				err  error
			}
			results := make(chan result, len(calls))
			for i, name := range append([]string{"first"}, tc.order...) {
				go func() { results <- result{name, calls[name]()} }()
				e.waitForWaiters(t, ctx, pid, i+1)
			}
			release()

			got := map[string]error{}
			for range calls {
				res := <-results
				got[res.name] = res.err
			}
			if !errors.Is(got["first"], app.ErrInsufficientFunds) {
				t.Errorf("first charge: %v, want insufficient funds", got["first"])
			}
			if !errors.Is(got["second"], tc.want) {
				t.Errorf("second request with the key: %v, want %v", got["second"], tc.want)
			}
			if got["top-up"] != nil {
				t.Errorf("top-up: %v", got["top-up"])
			}
			if b := e.balance(t, alice); b != 2000 {
				t.Errorf("balance = %d, want 2000 (nothing charged)", b)
			}
			if n := e.count(t, `SELECT count(*) FROM transactions WHERE kind = 'purchase'`); n != 0 {
				t.Errorf("%d purchases recorded for a refused key", n)
			}
			e.checkLedger(t)
		})
	}
}

// TestConcurrentSameKeyChargesRaceTopUp: in each round several replicas
// charge one key while a top-up makes the charge affordable. Whatever the
// interleaving, every request of the round gets the same outcome: all the
// same refusal, or all the same transaction; the key has one outcome
// recorded and the ledger adds up.
func TestConcurrentSameKeyChargesRaceTopUp(t *testing.T) {
	const (
		rounds  = 30
		charges = 6
		price   = 1200
		topUp   = 500
	)
	e := newEnv(t, 24)
	ctx := ctxT(t)
	svcs := e.replicas(3)
	paid, refused := 0, 0
	for round := range rounds {
		user := e.open(t, fmt.Sprintf("racer%d", round))
		key := fmt.Sprintf("order:r%d", round)
		start := make(chan struct{})
		var wg sync.WaitGroup
		ids := make([]string, charges)
		errs := make([]error, charges)
		for i := range charges {
			wg.Go(func() {
				<-start
				ids[i], errs[i] = chargeUntilOutcome(ctx, svcs[i%len(svcs)],
					app.ChargeCmd{UserID: user, Amount: price, IdempotencyKey: key, Reason: "race"})
			})
		}
		var topErr error
		wg.Go(func() {
			<-start
			_, topErr = svcs[round%len(svcs)].Credit(ctx, app.ChargeCmd{UserID: user, Amount: topUp, IdempotencyKey: key + ":topup"})
		})
		close(start)
		wg.Wait()
		if topErr != nil {
			t.Fatalf("round %d: top-up: %v", round, topErr)
		}
		for i := range charges {
			if !sameOutcome(ids[i], errs[i], ids[0], errs[0]) {
				t.Errorf("round %d: request %d got (%q, %v), request 0 got (%q, %v)", round, i, ids[i], errs[i], ids[0], errs[0])
			}
		}
		tx := e.count(t, `SELECT count(*) FROM transactions WHERE idempotency_key = $1`, "charge:"+key)
		ref := e.count(t, `SELECT count(*) FROM refusals WHERE idempotency_key = $1`, "charge:"+key)
		want := int64(1000 + topUp)
		if errs[0] == nil {
			paid++
			want -= price
			if tx != 1 || ref != 0 {
				t.Errorf("round %d: paid, but %d transactions and %d refusals under the key", round, tx, ref)
			}
		} else {
			refused++
			if !errors.Is(errs[0], app.ErrInsufficientFunds) {
				t.Errorf("round %d: %v", round, errs[0])
			}
			if tx != 0 || ref != 1 {
				t.Errorf("round %d: refused, but %d transactions and %d refusals under the key", round, tx, ref)
			}
		}
		if b := e.balance(t, user); b != want {
			t.Errorf("round %d: balance %d, want %d", round, b, want)
		}
	}
	t.Logf("%d rounds paid, %d refused", paid, refused)
	e.checkLedger(t)
}

// chargeUntilOutcome repeats a charge that ran out of retries (ErrBusy),
// as a caller would, with the same key, until it has an outcome.
func chargeUntilOutcome(ctx context.Context, svc *app.Service, cmd app.ChargeCmd) (string, error) {
	for {
		res, err := svc.Charge(ctx, cmd)
		if !errors.Is(err, app.ErrBusy) || ctx.Err() != nil {
			return res.TransactionID, err
		}
	}
}

func sameOutcome(id1 string, err1 error, id2 string, err2 error) bool {
	if err1 != nil || err2 != nil {
		return err1 != nil && err2 != nil && app.KindOf(err1) == app.KindOf(err2) &&
			errors.Is(err1, app.ErrInsufficientFunds) == errors.Is(err2, app.ErrInsufficientFunds)
	}
	return id1 == id2
}
