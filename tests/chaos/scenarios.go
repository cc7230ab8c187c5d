package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
)

// The purchase saga's weak spot is between the charge and the grant: the
// coins are gone, the item is not yet given. These scenarios put a purchase
// exactly there, kill a service, restart it, and check that the item is
// granted once and paid once, and that a retry with the same
// Idempotency-Key answers 200 without charging again. The workload is
// paused while they run, so every fact checked is the scenario's own.

const scenarioItem, scenarioPrice = "pen", 10

// scenarioOrder is a purchase a scenario made (checked again after every
// later fault).
type scenarioOrder struct {
	u         *user
	item, key string
}

type scenarioResult struct {
	key, name, forced string
	firstAnswer       string
	before            string // state while the service was down
	killed            time.Time
	restart           time.Duration // the restart (until ready)
	completed         time.Duration // kill -> order completed
	retry             string
	inv               *invariant
}

type scenario struct {
	key, name, forced string
	// run puts a purchase between the charge and the grant, kills and
	// restarts; it sets r.killed and returns the order and when the
	// restart was done.
	run func(ctx context.Context, u *user, r *scenarioResult) (order, time.Time, error)
}

func (s *suite) scenarioList() []scenario {
	list := []scenario{
		{
			key:  "s1",
			name: "kill -9 merch between the charge and the grant",
			forced: "grants table locked (LOCK TABLE grants IN SHARE MODE, read-only tx) so the grant RPC blocks inside user; " +
				"merch is killed once the charge is in the ledger and the grant INSERT waits on the lock; then the lock is released and merch restarted",
			run: func(ctx context.Context, u *user, r *scenarioResult) (order, time.Time, error) {
				return s.grantInFlight(ctx, u, "merch", r)
			},
		},
		{
			key:  "s2",
			name: "kill -9 user between the charge and the grant",
			forced: "the same lock; user is killed while its grant transaction waits on it (so the grant never commits); " +
				"merch answers the buyer 503 and keeps the order pending; user is restarted and merch's recovery loop finishes the order",
			run: func(ctx context.Context, u *user, r *scenarioResult) (order, time.Time, error) {
				return s.grantInFlight(ctx, u, "user", r)
			},
		},
	}
	if !s.cfg.quick {
		list = append(list, scenario{
			key:  "s3",
			name: "kill -9 merch holding a charged, ungranted order",
			forced: "user is killed before the purchase, so the charge succeeds and the grant fails (503, order pending); " +
				"then merch is killed, user restarted, merch restarted: its recovery loop finishes the order",
			run: s.pendingThenKill,
		})
	}
	return list
}

func (s *suite) runScenario(ctx context.Context, sc scenario, u *user) scenarioResult {
	r := scenarioResult{key: sc.key, name: sc.name, forced: sc.forced, inv: &invariant{name: sc.name}}
	key := fmt.Sprintf("chaos-%s-%s", s.cfg.runID, sc.key)
	b0, err := s.balance(ctx, u.id)
	if err != nil {
		r.inv.fail("balance before: %v", err)
		return r
	}
	o, up, err := sc.run(ctx, u, &r)
	if err != nil {
		r.inv.fail("%v", err)
		s.heal(ctx)
		return r
	}
	s.scenarioOrders = append(s.scenarioOrders, scenarioOrder{u: u, item: scenarioItem, key: key})

	// The recovery loop (or the restarted service) finishes the order.
	err = waitFor(ctx, s.cfg.deadline, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		got, found, err := s.orderByKey(ctx, orderKey(u.id, key))
		o = got
		return found && got.status != "pending", err
	})
	r.completed = time.Since(r.killed)
	r.restart = up.Sub(r.killed)
	if err != nil {
		r.inv.fail("order %s not finished after the restart: %v", o.id, err)
		return r
	}
	s.verifyOnce(ctx, r.inv, u, o, b0, "after recovery")

	// The client retries with the same key: 200, nothing charged again.
	a, _, _ := workloadRetries.do(ctx, func() answer { return s.c.buy(ctx, u, scenarioItem, key) })
	r.retry = a.String()
	if a.code != http.StatusOK {
		r.inv.fail("retry with the same Idempotency-Key answered %s, want 200", a)
	}
	s.verifyOnce(ctx, r.inv, u, o, b0, "after the retry")

	// GET /api/info may need a moment: the info service reconnects to a
	// restarted backend with gRPC's backoff.
	var in info
	err = waitFor(ctx, s.cfg.deadline, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		in, a = s.c.info(ctx, u)
		return a.code == http.StatusOK, nil
	})
	switch {
	case err != nil:
		r.inv.fail("GET /api/info: %s (%v)", a, err)
	case in.Coins*minorPerCoin != b0-scenarioPrice*minorPerCoin || len(in.Inventory) != 1 ||
		in.Inventory[0].Type != scenarioItem || in.Inventory[0].Quantity != 1:
		r.inv.fail("GET /api/info: %d coins, inventory %+v; want %s coins and one %s", in.Coins, in.Inventory,
			coins(b0-scenarioPrice*minorPerCoin), scenarioItem)
	}
	return r
}

// verifyOnce: the order is completed, granted exactly once, charged exactly
// once (and not refunded), and the buyer paid the price once.
func (s *suite) verifyOnce(ctx context.Context, inv *invariant, u *user, o order, b0 int64, when string) {
	inv.checked++
	var st struct {
		status                   string
		grants, charges, refunds int
		purchases                int
		balance                  int64
		quantity                 int64
	}
	err := readRetry(ctx, func(ctx context.Context) error {
		if err := s.db.merch.QueryRow(ctx, `SELECT status FROM orders WHERE id = $1`, o.id).Scan(&st.status); err != nil {
			return err
		}
		if err := s.db.users.QueryRow(ctx, `SELECT count(*) FROM grants WHERE order_id = $1`, o.id).Scan(&st.grants); err != nil {
			return err
		}
		if err := s.db.users.QueryRow(ctx, `SELECT COALESCE(sum(quantity), 0)::bigint FROM inventory WHERE user_id = $1`, u.id).Scan(&st.quantity); err != nil {
			return err
		}
		return s.db.coins.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE idempotency_key = $2),
			       count(*) FILTER (WHERE idempotency_key = $3),
			       count(*) FILTER (WHERE kind = 'purchase'),
			       (SELECT balance FROM accounts WHERE user_id = $1)
			FROM transactions WHERE from_user_id = $1 OR to_user_id = $1`,
			u.id, chargeKey(o.id), refundKey(o.id)).Scan(&st.charges, &st.refunds, &st.purchases, &st.balance)
	})
	if err != nil {
		inv.fail("%s: read state: %v", when, err)
		return
	}
	if st.status != "completed" || st.grants != 1 || st.quantity != 1 || st.charges != 1 || st.purchases != 1 ||
		st.refunds != 0 || st.balance != b0-scenarioPrice*minorPerCoin {
		inv.fail("%s: order %s %s, %d grants, %d items in the inventory, %d charges (%d purchases), %d refunds, balance %s (want completed, 1, 1, 1, 0, %s)",
			when, o.id, st.status, st.grants, st.quantity, st.charges, st.purchases, st.refunds, coins(st.balance),
			coins(b0-scenarioPrice*minorPerCoin))
	}
}

// grantInFlight: lock the grants table, buy, wait until the charge is in
// the ledger and the grant waits on the lock, kill -9 the victim, release,
// restart the victim.
func (s *suite) grantInFlight(ctx context.Context, u *user, victim string, r *scenarioResult) (order, time.Time, error) {
	key := fmt.Sprintf("chaos-%s-%s", s.cfg.runID, r.key)
	conn, err := s.db.users.Acquire(ctx)
	if err != nil {
		return order{}, time.Time{}, err
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return order{}, time.Time{}, err
	}
	released := false
	release := func() {
		if !released {
			released = true
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}
	defer release()
	if _, err := tx.Exec(ctx, `LOCK TABLE grants IN SHARE MODE`); err != nil {
		return order{}, time.Time{}, fmt.Errorf("lock grants: %w", err)
	}

	answers := make(chan answer, 1)
	go func() { answers <- s.c.buy(ctx, u, scenarioItem, key) }()

	var o order
	err = waitFor(ctx, 20*time.Second, 10*time.Millisecond, func(ctx context.Context) (bool, error) {
		got, found, err := s.orderByKey(ctx, orderKey(u.id, key))
		if err != nil || !found {
			return false, err
		}
		o = got
		charged, err := s.txExists(ctx, chargeKey(o.id))
		if err != nil || !charged {
			return false, err
		}
		n, err := s.grantStatements(ctx, true)
		return n > 0, err
	})
	if err != nil {
		return o, time.Time{}, fmt.Errorf("purchase did not reach the grant: %w", err)
	}
	if r.killed, err = s.kill9(ctx, victim); err != nil {
		return o, time.Time{}, err
	}
	if victim == "merch" {
		// The user service sees its caller gone and cancels the grant; wait
		// for that before releasing the lock, so the grant cannot slip in.
		if err := waitFor(ctx, 10*time.Second, 10*time.Millisecond, func(ctx context.Context) (bool, error) {
			n, err := s.grantStatements(ctx, true)
			return n == 0, err
		}); err != nil {
			s.log.Printf("%s: the grant still waits after merch died: %v", r.key, err)
		}
	}
	release()
	select {
	case a := <-answers:
		r.firstAnswer = a.String()
	case <-time.After(30 * time.Second):
		r.firstAnswer = "no answer in 30s"
	}
	// Whatever ran the grant's transaction is gone or has rolled back.
	if err := waitFor(ctx, 15*time.Second, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, err := s.grantStatements(ctx, false)
		return n == 0, err
	}); err != nil {
		return o, time.Time{}, fmt.Errorf("grant transaction still open: %w", err)
	}
	r.before = s.describe(ctx, o)
	if err := s.script(ctx, "scripts/services.sh", "restart-one", victim); err != nil {
		return o, time.Time{}, err
	}
	return o, time.Now(), nil
}

// pendingThenKill: user down, buy (charged, not granted, 503), kill -9
// merch, restart user, restart merch.
func (s *suite) pendingThenKill(ctx context.Context, u *user, r *scenarioResult) (order, time.Time, error) {
	key := fmt.Sprintf("chaos-%s-%s", s.cfg.runID, r.key)
	if _, err := s.kill9(ctx, "user"); err != nil {
		return order{}, time.Time{}, err
	}
	a := s.c.buy(ctx, u, scenarioItem, key)
	r.firstAnswer = a.String()
	o, found, err := s.orderByKey(ctx, orderKey(u.id, key))
	if err != nil || !found {
		return o, time.Time{}, errors.Join(fmt.Errorf("no order after the purchase (answer %s)", a), err)
	}
	if r.killed, err = s.kill9(ctx, "merch"); err != nil {
		return o, time.Time{}, err
	}
	r.before = s.describe(ctx, o)
	if err := s.script(ctx, "scripts/services.sh", "restart-one", "user"); err != nil {
		return o, time.Time{}, err
	}
	if err := s.script(ctx, "scripts/services.sh", "restart-one", "merch"); err != nil {
		return o, time.Time{}, err
	}
	return o, time.Now(), nil
}

// describe says where an order stands: its status, whether it is charged
// and whether it is granted.
func (s *suite) describe(ctx context.Context, o order) string {
	got, _, err := s.orderByKey(ctx, o.key)
	if err != nil {
		return err.Error()
	}
	charged, err1 := s.txExists(ctx, chargeKey(o.id))
	var grants int
	err2 := s.db.users.QueryRow(ctx, `SELECT count(*) FROM grants WHERE order_id = $1`, o.id).Scan(&grants)
	if err := errors.Join(err1, err2); err != nil {
		return err.Error()
	}
	yes := map[bool]string{true: "charged", false: "not charged"}[charged]
	g := "not granted"
	if grants > 0 {
		g = "granted"
	}
	return fmt.Sprintf("order %s, %s, %s", got.status, yes, g)
}

func (s *suite) orderByKey(ctx context.Context, key string) (order, bool, error) {
	var o order
	err := s.db.merch.QueryRow(ctx, `
		SELECT id::text, user_id::text, item, price, idempotency_key, status, COALESCE(failure, '')
		FROM orders WHERE idempotency_key = $1`, key).
		Scan(&o.id, &o.userID, &o.item, &o.price, &o.key, &o.status, &o.failure)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, false, nil
	}
	return o, err == nil, err
}

func (s *suite) txExists(ctx context.Context, key string) (bool, error) {
	var n int
	err := s.db.coins.QueryRow(ctx, `SELECT count(*) FROM transactions WHERE idempotency_key = $1`, key).Scan(&n)
	return n > 0, err
}

func (s *suite) balance(ctx context.Context, userID string) (int64, error) {
	var b int64
	err := s.db.coins.QueryRow(ctx, `SELECT balance FROM accounts WHERE user_id = $1`, userID).Scan(&b)
	return b, err
}

// grantStatements counts the user service's sessions running a grant
// INSERT: waiting on a lock (waiting) or in any non-idle state.
func (s *suite) grantStatements(ctx context.Context, waiting bool) (int, error) {
	var n int
	err := s.db.users.QueryRow(ctx, `
		SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		  AND application_name <> 'merch-chaos'
		  AND query ILIKE '%INSERT INTO grants%'
		  AND CASE WHEN $1 THEN wait_event_type = 'Lock' ELSE state <> 'idle' END`, waiting).Scan(&n)
	return n, err
}
