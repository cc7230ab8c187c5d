package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/pkg/events"

	pgstore "github.com/merchshop/merchshop/services/coins/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/coins/internal/app"
	"github.com/merchshop/merchshop/services/coins/internal/testdb"
)

type env struct {
	pool *pgxpool.Pool
	svc  *app.Service
}

func newEnv(t testing.TB, maxConns int32) *env {
	t.Helper()
	pool := testdb.Pool(t, maxConns)
	return &env{pool: pool, svc: app.New(pgstore.New(pool, 0), nil)}
}

// replicas returns n services over stores of their own on the same
// database, as n processes of the service would be: the in-process account
// locks of one do not hold back the others, so the database's row locks and
// the bounded 40001 retries are what keeps them correct.
func (e *env) replicas(n int) []*app.Service {
	out := make([]*app.Service, n)
	for i := range out {
		out[i] = app.New(pgstore.New(e.pool, 0), nil)
	}
	return out
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open opens an account for a new user and returns its id.
func (e *env) open(t testing.TB, name string) string {
	t.Helper()
	id := uuid.NewString()
	res, err := e.svc.OpenAccount(ctxT(t), id, name)
	if err != nil || !res.Created || res.Balance != 1000 {
		t.Fatalf("open %s: %+v, %v", name, res, err)
	}
	return id
}

func (e *env) balance(t testing.TB, id string) int64 {
	t.Helper()
	o, err := e.svc.Overview(ctxT(t), id)
	if err != nil {
		t.Fatalf("balance: %v", err)
	}
	return o.Balance
}

func (e *env) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(ctxT(t), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// checkLedger asserts the ledger's invariants over the whole schema: every
// balance equals the sum of its entries and is not negative, every
// transaction's entries match its kind and amount, and no money was made
// or lost beyond grants and credits and purchases.
func (e *env) checkLedger(t testing.TB) {
	t.Helper()
	if n := e.count(t, `SELECT count(*) FROM accounts a
		WHERE a.balance <> COALESCE((SELECT sum(delta) FROM ledger_entries l WHERE l.user_id = a.user_id), 0)`); n != 0 {
		t.Errorf("%d accounts whose balance differs from the sum of their ledger entries", n)
	}
	if n := e.count(t, `SELECT count(*) FROM accounts WHERE balance < 0`); n != 0 {
		t.Errorf("%d negative balances", n)
	}
	if n := e.count(t, `SELECT count(*) FROM transactions t WHERE
		(SELECT sum(delta) FROM ledger_entries l WHERE l.transaction_id = t.id) <>
		CASE t.kind WHEN 'transfer' THEN 0 WHEN 'purchase' THEN -t.amount ELSE t.amount END
		OR (SELECT count(*) FROM ledger_entries l WHERE l.transaction_id = t.id) <>
		CASE t.kind WHEN 'transfer' THEN 2 ELSE 1 END`); n != 0 {
		t.Errorf("%d transactions whose ledger entries do not match", n)
	}
	if n := e.count(t, `SELECT count(*) FROM (SELECT
		(SELECT COALESCE(sum(balance), 0) FROM accounts) AS total,
		(SELECT COALESCE(sum(CASE kind WHEN 'purchase' THEN -amount WHEN 'transfer' THEN 0 ELSE amount END), 0) FROM transactions) AS minted) x
		WHERE total <> minted`); n != 0 {
		t.Error("total of balances differs from grants + credits - purchases")
	}
	if n := e.count(t, totalsDriftSQL); n != 0 {
		t.Errorf("%d transfer totals differ from the transfers in the ledger", n)
	}
}

func TestOpenAccountTwice(t *testing.T) {
	e := newEnv(t, 4)
	ctx := ctxT(t)
	id := e.open(t, "alice")
	res, err := e.svc.OpenAccount(ctx, id, "alice")
	if err != nil || res.Created || res.Balance != 1000 {
		t.Fatalf("second open: %+v, %v", res, err)
	}
	if n := e.count(t, `SELECT count(*) FROM transactions WHERE kind = 'grant' AND to_user_id = $1 AND idempotency_key = $2`, id, "open:"+id); n != 1 {
		t.Errorf("grants = %d, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("outbox rows = %d, want 1", n)
	}
	if b := e.balance(t, id); b != 1000 {
		t.Errorf("balance = %d, want 1000", b)
	}
	// Another user cannot take the name.
	if _, err := e.svc.OpenAccount(ctx, uuid.NewString(), "alice"); !errors.Is(err, app.ErrUsernameTaken) {
		t.Errorf("taken username: %v", err)
	}
	e.checkLedger(t)
}

func TestOpenAccountConcurrent(t *testing.T) {
	e := newEnv(t, 20)
	ctx := ctxT(t)
	id := uuid.NewString()
	var created atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			res, err := e.svc.OpenAccount(ctx, id, "bob")
			if err != nil {
				errs <- err
				return
			}
			if res.Balance != 1000 {
				errs <- fmt.Errorf("balance %d", res.Balance)
			}
			if res.Created {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent open: %v", err)
	}
	if created.Load() != 1 {
		t.Errorf("created = %d, want exactly 1", created.Load())
	}
	if n := e.count(t, `SELECT count(*) FROM transactions WHERE kind = 'grant'`); n != 1 {
		t.Errorf("grants = %d, want 1", n)
	}
	if b := e.balance(t, id); b != 1000 {
		t.Errorf("balance = %d", b)
	}
	e.checkLedger(t)
}

func TestTransferRefusals(t *testing.T) {
	e := newEnv(t, 4)
	ctx := ctxT(t)
	alice, bob := e.open(t, "alice"), e.open(t, "bob")
	cases := []struct {
		name string
		cmd  app.TransferCmd
		want error
	}{
		{"zero", app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 0, IdempotencyKey: "k"}, app.ErrAmountTooSmall},
		{"unknown recipient", app.TransferCmd{FromUserID: alice, ToUsername: "nobody", Amount: 1, IdempotencyKey: "k"}, app.ErrUnknownRecipient},
		{"self", app.TransferCmd{FromUserID: alice, ToUsername: "alice", Amount: 1, IdempotencyKey: "k"}, app.ErrSelfTransfer},
		{"insufficient", app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 1001, IdempotencyKey: "k"}, app.ErrInsufficientFunds},
		{"no account", app.TransferCmd{FromUserID: uuid.NewString(), ToUsername: "bob", Amount: 1, IdempotencyKey: "k"}, app.ErrAccountNotFound},
		{"long key", app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 1, IdempotencyKey: strings.Repeat("k", 201)}, app.ErrKeyTooLong},
		{"nul in key", app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 1, IdempotencyKey: "a\x00b"}, app.ErrKeyInvalid},
	}
	for _, c := range cases {
		if _, err := e.svc.Transfer(ctx, c.cmd); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// The whole balance can go.
	if _, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 1000, IdempotencyKey: "all"}); err != nil {
		t.Fatalf("transfer everything: %v", err)
	}
	if a, b := e.balance(t, alice), e.balance(t, bob); a != 0 || b != 2000 {
		t.Errorf("balances %d, %d; want 0, 2000", a, b)
	}
	if n := e.count(t, `SELECT count(*) FROM transactions WHERE kind = 'transfer'`); n != 1 {
		t.Errorf("refused transfers left %d transactions", n-1)
	}
	e.checkLedger(t)
}

func TestTransferWritesOutboxEvent(t *testing.T) {
	e := newEnv(t, 4)
	ctx := ctxT(t)
	alice, bob := e.open(t, "alice"), e.open(t, "bob")
	res, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 42, IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		topic, key string
		payload    []byte
	)
	err = e.pool.QueryRow(ctx, `SELECT topic, key, payload FROM outbox WHERE convert_from(payload, 'UTF8') LIKE '%' || $1 || '%'`,
		res.TransactionID).Scan(&topic, &key, &payload)
	if err != nil {
		t.Fatalf("outbox row of the transfer: %v", err)
	}
	var ev events.Transaction
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	if topic != events.TopicTransactions || key != alice {
		t.Errorf("topic %q key %q", topic, key)
	}
	if ev.TransactionID != res.TransactionID || ev.Kind != events.KindTransfer || ev.Amount != 42 ||
		ev.FromUserID != alice || ev.FromUsername != "alice" || ev.ToUserID != bob || ev.ToUsername != "bob" ||
		ev.EventID == "" || ev.CreatedAt.IsZero() {
		t.Errorf("event %+v", ev)
	}
	// The event carries the transaction's own time (the read model and the
	// reconciliation compare them).
	var at time.Time
	if err := e.pool.QueryRow(ctx, `SELECT created_at FROM transactions WHERE id = $1`, res.TransactionID).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if !ev.CreatedAt.Equal(at) {
		t.Errorf("event created_at %v, transaction created_at %v", ev.CreatedAt, at)
	}
	// Replays add no event.
	if _, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 42, IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT count(*) FROM outbox`); n != 3 {
		t.Errorf("outbox rows = %d, want 3 (2 grants, 1 transfer)", n)
	}
}

// TestRandomTransfersKeepTotal: 30 workers of one process make random
// transfers among 5 hot accounts. Only "insufficient funds" may fail them.
func TestRandomTransfersKeepTotal(t *testing.T) {
	randomTransfers(t, 1, 1500)
}

// TestRandomTransfersAcrossReplicas: the same over three processes'
// stores, where nothing but the database's row locks serialises them. A
// lock wait at READ COMMITTED ends with the holder's commit, not a
// serialization failure, so no transfer runs out of retries either.
func TestRandomTransfersAcrossReplicas(t *testing.T) {
	randomTransfers(t, 3, 900)
}

func randomTransfers(t *testing.T, replicas, transfers int) {
	const (
		accounts = 5
		workers  = 30
	)
	e := newEnv(t, 20)
	ctx := ctxT(t)
	ids := make([]string, accounts)
	names := make([]string, accounts)
	for i := range accounts {
		names[i] = fmt.Sprintf("hot%d", i)
		ids[i] = e.open(t, names[i])
	}
	var (
		left        atomic.Int64
		ok, refused atomic.Int64
		wg          sync.WaitGroup
	)
	left.Store(int64(transfers))
	errs := make(chan error, workers)
	svcs := e.replicas(replicas)
	for w := range workers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			svc := svcs[w%len(svcs)]
			for left.Add(-1) >= 0 {
				from := rnd.IntN(accounts)
				to := (from + 1 + rnd.IntN(accounts-1)) % accounts
				_, err := svc.Transfer(ctx, app.TransferCmd{
					FromUserID: ids[from], ToUsername: names[to], Amount: 1 + rnd.Int64N(300), IdempotencyKey: uuid.NewString(),
				})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, app.ErrInsufficientFunds):
					refused.Add(1)
				default:
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("transfer failed with something other than insufficient funds: %v", err)
	}
	var total int64
	for _, id := range ids {
		b := e.balance(t, id)
		if b < 0 {
			t.Errorf("negative balance %d", b)
		}
		total += b
	}
	if total != accounts*1000 {
		t.Errorf("total = %d, want %d", total, accounts*1000)
	}
	if n := e.count(t, `SELECT count(*) FROM transactions WHERE kind = 'transfer'`); int64(n) != ok.Load() {
		t.Errorf("%d transfer rows for %d successes", n, ok.Load())
	}
	t.Logf("%d replicas: %d transfers done, %d refused for insufficient funds",
		replicas, ok.Load(), refused.Load())
	e.checkLedger(t)
}

func TestConcurrentDoubleSpend(t *testing.T) {
	e := newEnv(t, 20)
	ctx := ctxT(t)
	payer := e.open(t, "payer")
	payees := []string{"p0", "p1", "p2", "p3", "p4"}
	for _, p := range payees {
		e.open(t, p)
	}
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			_, err := e.svc.Transfer(ctx, app.TransferCmd{
				FromUserID: payer, ToUsername: payees[i%len(payees)], Amount: 100, IdempotencyKey: fmt.Sprint("spend-", i),
			})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, app.ErrInsufficientFunds):
				refused.Add(1)
			default:
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	if ok.Load() != 10 || refused.Load() != 40 {
		t.Errorf("%d succeeded, %d refused; want 10 and 40", ok.Load(), refused.Load())
	}
	if b := e.balance(t, payer); b != 0 {
		t.Errorf("payer balance = %d, want 0", b)
	}
	e.checkLedger(t)
}

func TestOppositeTransfersDoNotDeadlock(t *testing.T) {
	e := newEnv(t, 20)
	ctx := ctxT(t)
	a, b := e.open(t, "a"), e.open(t, "b")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			from, to := a, "b"
			if i%2 == 1 {
				from, to = b, "a"
			}
			for j := range 25 {
				if _, err := e.svc.Transfer(ctx, app.TransferCmd{
					FromUserID: from, ToUsername: to, Amount: 3, IdempotencyKey: fmt.Sprintf("w%d-%d", i, j),
				}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("opposite transfer failed: %v", err)
	}
	// Each direction moved 10*25*3 coins.
	if ba, bb := e.balance(t, a), e.balance(t, b); ba != 1000 || bb != 1000 {
		t.Errorf("balances %d + %d, want 1000 each", ba, bb)
	}
	if n := e.count(t, `SELECT count(*) FROM transactions WHERE kind = 'transfer'`); n != 500 {
		t.Errorf("transfers = %d, want 500", n)
	}
	e.checkLedger(t)
}

func TestReplays(t *testing.T) {
	e := newEnv(t, 20)
	ctx := ctxT(t)
	alice, bob := e.open(t, "alice"), e.open(t, "bob")
	cmd := app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 7, IdempotencyKey: "same-key"}

	first, err := e.svc.Transfer(ctx, cmd)
	if err != nil || first.Replayed {
		t.Fatalf("first: %+v %v", first, err)
	}
	second, err := e.svc.Transfer(ctx, cmd)
	if err != nil || !second.Replayed || second.TransactionID != first.TransactionID {
		t.Fatalf("sequential replay: %+v %v", second, err)
	}
	if _, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 8, IdempotencyKey: "same-key"}); !errors.Is(err, app.ErrKeyReused) {
		t.Errorf("same key, other amount: %v", err)
	}
	e.open(t, "carol")
	if _, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "carol", Amount: 7, IdempotencyKey: "same-key"}); !errors.Is(err, app.ErrKeyReused) {
		t.Errorf("same key, other recipient: %v", err)
	}
	// Keys are per sender: bob may use the same key.
	if res, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: bob, ToUsername: "alice", Amount: 1, IdempotencyKey: "same-key"}); err != nil || res.Replayed {
		t.Errorf("other sender, same key: %+v %v", res, err)
	}

	// Concurrent: 20 requests with one new key.
	const n = 20
	results := make([]app.TxResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	svcs := e.replicas(4)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = svcs[i%len(svcs)].Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 11, IdempotencyKey: "burst"})
		})
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent replay %d: %v", i, errs[i])
		}
		if results[i].TransactionID != results[0].TransactionID {
			t.Errorf("request %d got transaction %s, request 0 got %s", i, results[i].TransactionID, results[0].TransactionID)
		}
		if !results[i].Replayed {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d requests reported a fresh movement, want 1", fresh)
	}
	if got := e.count(t, `SELECT count(*) FROM transactions WHERE kind = 'transfer' AND from_user_id = $1`, alice); got != 2 {
		t.Errorf("alice's transfers = %d, want 2", got)
	}
	// 1000 - 7 - 11 + 1
	if b := e.balance(t, alice); b != 983 {
		t.Errorf("alice balance = %d, want 983", b)
	}
	e.checkLedger(t)
}

func TestChargeAndCredit(t *testing.T) {
	e := newEnv(t, 20)
	ctx := ctxT(t)
	alice := e.open(t, "alice")
	charge := app.ChargeCmd{UserID: alice, Amount: 80, IdempotencyKey: "order:1", Reason: "t-shirt"}
	first, err := e.svc.Charge(ctx, charge)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.svc.Charge(ctx, charge)
	if err != nil || !again.Replayed || again.TransactionID != first.TransactionID {
		t.Errorf("charge replay: %+v %v", again, err)
	}
	if _, err := e.svc.Charge(ctx, app.ChargeCmd{UserID: alice, Amount: 921, IdempotencyKey: "order:2"}); !errors.Is(err, app.ErrInsufficientFunds) {
		t.Errorf("overcharge: %v", err)
	}
	if _, err := e.svc.Charge(ctx, app.ChargeCmd{UserID: uuid.NewString(), Amount: 1, IdempotencyKey: "order:3"}); !errors.Is(err, app.ErrAccountNotFound) {
		t.Errorf("charge without account: %v", err)
	}
	// Concurrent charges with one key: one payment.
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		wg.Go(func() {
			res, err := e.svc.Charge(ctx, app.ChargeCmd{UserID: alice, Amount: 20, IdempotencyKey: "order:4", Reason: "cup"})
			if err != nil {
				t.Errorf("concurrent charge: %v", err)
			}
			ids[i] = res.TransactionID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Errorf("concurrent charges got different transactions %s, %s", id, ids[0])
		}
	}
	if _, err := e.svc.Credit(ctx, app.ChargeCmd{UserID: alice, Amount: 5, IdempotencyKey: "refund:1", Reason: "refund"}); err != nil {
		t.Fatal(err)
	}
	if b := e.balance(t, alice); b != 1000-80-20+5 {
		t.Errorf("balance = %d, want 905", b)
	}
	if n := e.count(t, `SELECT count(*) FROM transactions WHERE kind = 'purchase' AND to_user_id IS NULL AND reason IN ('t-shirt', 'cup')`); n != 2 {
		t.Errorf("purchases = %d, want 2", n)
	}
	e.checkLedger(t)
}

func TestHistoryGroupsTransfers(t *testing.T) {
	e := newEnv(t, 4)
	ctx := ctxT(t)
	me := e.open(t, "me")
	for _, name := range []string{"zed", "Bob", "anna", "carl"} {
		e.open(t, name)
	}
	idOf := func(name string) string {
		var id string
		if err := e.pool.QueryRow(ctx, `SELECT user_id::text FROM accounts WHERE username = $1`, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	send := func(from, to string, amount int64) {
		t.Helper()
		if _, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: from, ToUsername: to, Amount: amount, IdempotencyKey: uuid.NewString()}); err != nil {
			t.Fatal(err)
		}
	}
	emptyO, err := e.svc.Overview(ctx, me)
	empty := emptyO.History
	if err != nil || empty.Received == nil || empty.Sent == nil || len(empty.Received)+len(empty.Sent) != 0 {
		t.Fatalf("empty history: %+v %v", empty, err)
	}
	send(me, "zed", 10)
	send(me, "zed", 5)
	send(me, "anna", 1)
	send(idOf("carl"), "me", 30)
	send(idOf("Bob"), "me", 2)
	send(idOf("carl"), "me", 3)
	send(idOf("anna"), "zed", 100) // not mine
	if _, err := e.svc.Charge(ctx, app.ChargeCmd{UserID: me, Amount: 50, IdempotencyKey: "order:x", Reason: "book"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Credit(ctx, app.ChargeCmd{UserID: me, Amount: 9, IdempotencyKey: "gift", Reason: "bonus"}); err != nil {
		t.Fatal(err)
	}

	o, err := e.svc.Overview(ctx, me)
	if err != nil {
		t.Fatal(err)
	}
	h := o.History
	wantRecv := []app.Counterpart{{Username: "Bob", Amount: 2}, {Username: "carl", Amount: 33}}
	wantSent := []app.Counterpart{{Username: "anna", Amount: 1}, {Username: "zed", Amount: 15}}
	if fmt.Sprint(h.Received) != fmt.Sprint(wantRecv) || fmt.Sprint(h.Sent) != fmt.Sprint(wantSent) {
		t.Errorf("history = %+v, want received %v sent %v", h, wantRecv, wantSent)
	}
	if b := e.balance(t, me); b != 1000-16+35-50+9 {
		t.Errorf("balance = %d", b)
	}
	// The balance comes from the same snapshot as the history.
	if o.Balance != 1000-16+35-50+9 || fmt.Sprint(o.Received) != fmt.Sprint(wantRecv) || fmt.Sprint(o.Sent) != fmt.Sprint(wantSent) {
		t.Errorf("overview = %+v, want balance %d, received %v sent %v", o, 1000-16+35-50+9, wantRecv, wantSent)
	}
	if _, err := e.svc.Overview(ctx, uuid.NewString()); !errors.Is(err, app.ErrAccountNotFound) {
		t.Errorf("overview of a user without an account: %v, want ErrAccountNotFound", err)
	}
	fresh, err := e.svc.Overview(ctx, idOf("Bob"))
	if err != nil || fresh.Received == nil || len(fresh.Received) != 0 || len(fresh.Sent) != 1 || fresh.Balance != 998 {
		t.Errorf("overview of Bob = %+v %v, want balance 998, nothing received, one sent", fresh, err)
	}
	e.checkLedger(t)
}

// TestOverviewIsOneSnapshot: the balance and the transfers of an overview
// always agree, also while transfers commit concurrently (separate
// balance and history reads would show a balance with a transfer missing
// from the list, or the other way round).
func TestOverviewIsOneSnapshot(t *testing.T) {
	e := newEnv(t, 8)
	ctx := ctxT(t)
	me := e.open(t, "me")
	e.open(t, "peer")
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: me, ToUsername: "peer", Amount: 1, IdempotencyKey: uuid.NewString()}); err != nil {
				done <- err
				return
			}
			if i == 500 {
				done <- nil
				return
			}
		}
	}()
	checks := 0
	for {
		o, err := e.svc.Overview(ctx, me)
		if err != nil {
			t.Fatal(err)
		}
		var sent int64
		for _, c := range o.Sent {
			sent += c.Amount
		}
		if o.Balance+sent != 1000 {
			close(stop)
			t.Fatalf("balance %d with %d sent: not one snapshot", o.Balance, sent)
		}
		checks++
		if sent >= 200 || checks > 5000 {
			break
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLedgerIsAppendOnly(t *testing.T) {
	e := newEnv(t, 4)
	ctx := ctxT(t)
	e.open(t, "alice")
	for _, q := range []string{
		`UPDATE ledger_entries SET delta = delta + 1`,
		`DELETE FROM ledger_entries`,
		`UPDATE transactions SET amount = 1`,
		`DELETE FROM transactions`,
		`TRUNCATE ledger_entries`,
	} {
		if _, err := e.pool.Exec(ctx, q); err == nil {
			t.Errorf("%s was accepted", q)
		}
	}
	if _, err := e.pool.Exec(ctx, `UPDATE accounts SET balance = -1`); err == nil {
		t.Error("negative balance accepted")
	}
	e.checkLedger(t)
}
