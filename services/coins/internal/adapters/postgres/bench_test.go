package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/services/coins/internal/app"
)

// benchAccounts opens n accounts, each credited with plenty of coins.
func benchAccounts(b *testing.B, e *env, n int) (ids, names []string) {
	b.Helper()
	ctx := ctxT(b)
	for i := range n {
		name := fmt.Sprintf("u%d", i)
		id := e.open(b, name)
		if _, err := e.svc.Credit(ctx, app.ChargeCmd{UserID: id, Amount: app.MaxAmount, IdempotencyKey: "bench:" + id}); err != nil {
			b.Fatal(err)
		}
		ids, names = append(ids, id), append(names, name)
	}
	return ids, names
}

func benchTransfers(b *testing.B, accounts int) {
	e := newEnv(b, 16)
	ids, names := benchAccounts(b, e, accounts)
	ctx := ctxT(b)
	var seed atomic.Uint64
	b.SetParallelism(4) // 4 x GOMAXPROCS concurrent transfers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rnd := rand.New(rand.NewPCG(seed.Add(1), 1))
		for pb.Next() {
			from := rnd.IntN(accounts)
			to := (from + 1 + rnd.IntN(accounts-1)) % accounts
			if _, err := e.svc.Transfer(ctx, app.TransferCmd{
				FromUserID: ids[from], ToUsername: names[to], Amount: 1, IdempotencyKey: uuid.NewString(),
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTransferHot: every transfer between the same two accounts.
func BenchmarkTransferHot(b *testing.B) { benchTransfers(b, 2) }

// BenchmarkTransferCold: transfers between random pairs of 500 accounts.
func BenchmarkTransferCold(b *testing.B) { benchTransfers(b, 500) }

// historyCounterparts is how many users the benchmarked user trades with.
const historyCounterparts = 50

// growHistory adds transfers between me and the counterparts until me has
// n, written in bulk as Move writes them (transactions, whose trigger
// keeps the running totals, and ledger entries; balances untouched: every
// pair sends and receives the same).
func growHistory(b *testing.B, e *env, me string, peers []string, have, n int) {
	b.Helper()
	if n <= have {
		return
	}
	ctx := ctxT(b)
	// Alternate directions so that balances stay as they are: transfer i
	// goes from me to peer i%k when i is even, back when it is odd, and
	// pairs of transfers cancel out.
	_, err := e.pool.Exec(ctx, `
		WITH t AS (
		    SELECT gen_random_uuid() AS id, i,
		           CASE WHEN i % 2 = 0 THEN $1::uuid ELSE ($2::uuid[])[1 + (i / 2) % $4] END AS from_id,
		           CASE WHEN i % 2 = 0 THEN ($2::uuid[])[1 + (i / 2) % $4] ELSE $1::uuid END AS to_id
		      FROM generate_series($3::int, $5::int - 1) AS i
		), ins AS (
		    INSERT INTO transactions (id, idempotency_key, kind, from_user_id, to_user_id, amount, request_hash)
		    SELECT id, 'bench:' || i, 'transfer', from_id, to_id, 100, 'h' FROM t
		)
		INSERT INTO ledger_entries (transaction_id, user_id, delta)
		SELECT id, from_id, -100 FROM t UNION ALL SELECT id, to_id, 100 FROM t`,
		me, peers, have, len(peers), n)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHistoryLength: GET /api/info's read (the overview) and a
// transfer of a user with 50 counterparts and 0, 10k, 100k and 1M
// transfers of history. Both must stay flat: the history is read from the
// running totals, one row per counterpart. BENCH_HISTORY_MAX caps the
// longest history (make bench-history runs all four).
func BenchmarkHistoryLength(b *testing.B) {
	e := newEnv(b, 8)
	me := e.open(b, "me")
	if _, err := e.svc.Credit(ctxT(b), app.ChargeCmd{UserID: me, Amount: app.MaxAmount, IdempotencyKey: "bench:me"}); err != nil {
		b.Fatal(err)
	}
	peers := make([]string, historyCounterparts)
	names := make([]string, historyCounterparts)
	for i := range peers {
		names[i] = fmt.Sprintf("peer%02d", i)
		peers[i] = e.open(b, names[i])
	}
	limit := 1_000_000
	if v := os.Getenv("BENCH_HISTORY_MAX"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("BENCH_HISTORY_MAX: %v", err)
		}
		limit = n
	}
	have := 0
	for _, n := range []int{0, 10_000, 100_000, 1_000_000} {
		if n > limit {
			break
		}
		growHistory(b, e, me, peers, have, n)
		have = n
		ctx := ctxT(b)
		b.Run(fmt.Sprintf("transfers=%d/overview", n), func(b *testing.B) {
			for b.Loop() {
				o, err := e.svc.Overview(ctx, me)
				if err != nil {
					b.Fatal(err)
				}
				if n > 0 && len(o.Sent) != historyCounterparts {
					b.Fatalf("overview lists %d counterparts, want %d", len(o.Sent), historyCounterparts)
				}
			}
		})
		b.Run(fmt.Sprintf("transfers=%d/transfer", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := e.svc.Transfer(ctx, app.TransferCmd{
					FromUserID: me, ToUsername: names[i%len(names)], Amount: 1, IdempotencyKey: uuid.NewString(),
				}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	e.checkLedger(b)
}
