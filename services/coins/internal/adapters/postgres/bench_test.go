package postgres_test

import (
	"fmt"
	"math/rand/v2"
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
