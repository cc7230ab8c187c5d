// Command reconcile compares the ClickHouse history read model with the
// coins ledger: per user, the number of history entries and the sum of their
// amounts must equal the ledger's for the same transactions. It prints every
// difference and exits 1 when there is any (2 when it could not run).
//
// It is an operations tool, and the one place in the system that reads the
// coins service's tables: read-only (a READ ONLY transaction), and only the
// columns transactions(id, kind, from_user_id, to_user_id, amount,
// created_at) and accounts(user_id, username, balance). Services never do
// this; they talk to coins over gRPC.
//
// The read model trails the ledger by a few seconds, so only transactions
// older than -settle are compared.
//
//	COINS_DATABASE_URL=postgres://... CLICKHOUSE_ADDR=127.0.0.1:9000 \
//	CLICKHOUSE_DATABASE=merch go run ./cmd/reconcile -settle 30s
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/merchshop/merchshop/pkg/config"
	"github.com/merchshop/merchshop/pkg/postgres"
	"github.com/merchshop/merchshop/services/info/internal/adapters/clickhouse"
	"github.com/merchshop/merchshop/services/info/internal/reconcile"
)

func main() {
	settle := flag.Duration("settle", 30*time.Second, "compare only transactions older than this")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	diffs, users, err := run(ctx, time.Now().Add(-*settle))
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconcile:", err)
		os.Exit(2)
	}
	if len(diffs) > 0 {
		reconcile.Print(os.Stdout, diffs)
		fmt.Printf("%d differences\n", len(diffs))
		os.Exit(1)
	}
	fmt.Printf("ok: history agrees with the ledger for %d users\n", users)
}

func run(ctx context.Context, cutoff time.Time) ([]reconcile.Diff, int, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env := config.FromOS()
	dsn := env.Required("COINS_DATABASE_URL")
	chCfg := clickhouse.Config{
		Addr:     env.String("CLICKHOUSE_ADDR", "127.0.0.1:9000"),
		Database: env.String("CLICKHOUSE_DATABASE", "merch"),
		Username: env.String("CLICKHOUSE_USER", "default"),
		Password: env.String("CLICKHOUSE_PASSWORD", ""),
		Wait:     10 * time.Second,
		ReadOnly: true,
	}
	if err := env.Err(); err != nil {
		return nil, 0, err
	}

	pool, err := postgres.Connect(ctx, log, dsn, 2, 10*time.Second)
	if err != nil {
		return nil, 0, err
	}
	defer pool.Close()
	ledger, err := reconcile.ReadLedger(ctx, pool, cutoff)
	if err != nil {
		return nil, 0, err
	}
	in := reconcile.Input{Ledger: ledger.Before, LedgerAll: ledger.All, Balances: ledger.Balances, Usernames: ledger.Usernames,
		Transfers: ledger.Transfers, Running: ledger.Running}

	store, err := clickhouse.Open(ctx, chCfg, log)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = store.Close() }()
	history, err := store.TotalsBefore(ctx, cutoff)
	if err != nil {
		return nil, 0, err
	}
	in.History = make(map[string]reconcile.Totals, len(history))
	for u, t := range history {
		in.History[u] = reconcile.Totals{Count: t.Count, SumMinor: t.Sum * reconcile.MinorPerCoin}
	}
	return reconcile.Compare(in), len(in.Balances), nil
}
