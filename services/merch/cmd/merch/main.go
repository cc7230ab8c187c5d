// Command merch serves the catalog and the purchase saga.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	merchv1 "github.com/merchshop/merchshop/gen/merch/v1"
	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	pkgapp "github.com/merchshop/merchshop/pkg/app"
	"github.com/merchshop/merchshop/pkg/kafka"
	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/pkg/service"
	"github.com/merchshop/merchshop/services/merch/internal/adapters/grpcclients"
	"github.com/merchshop/merchshop/services/merch/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/merch/internal/app"
	grpctransport "github.com/merchshop/merchshop/services/merch/internal/transport/grpc"
	"github.com/merchshop/merchshop/services/merch/migrations"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "merch:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := pkgapp.SignalContext()
	defer stop()

	rt := service.Init("merch", "127.0.0.1:50054", "127.0.0.1:8084")
	storeKind := rt.Env.String("MERCH_STORE", "postgres")
	brokers := rt.Env.List("KAFKA_BROKERS", []string{"127.0.0.1:9092"})
	recovery := app.RecoveryConfig{
		Interval: rt.Env.Duration("MERCH_RECOVERY_INTERVAL", 5*time.Second),
		Age:      rt.Env.Duration("MERCH_RECOVERY_AGE", 10*time.Second),
		Batch:    rt.Env.Int("MERCH_RECOVERY_BATCH", 20),
	}
	if err := rt.ConfigErr(); err != nil {
		return err
	}
	if storeKind != "postgres" {
		return fmt.Errorf("MERCH_STORE=%q: only postgres is built into this binary", storeKind)
	}

	coinsConn, err := rt.Dial("coins", "COINS_TARGET", "127.0.0.1:50053")
	if err != nil {
		return err
	}
	userConn, err := rt.Dial("user", "USER_TARGET", "127.0.0.1:50052")
	if err != nil {
		return err
	}

	pool, err := rt.Postgres(ctx, "postgres://merch@127.0.0.1:5432/merch?sslmode=disable", 40, migrations.FS, ".")
	if err != nil {
		return err
	}
	defer pool.Close()

	producer, err := kafka.NewProducer(brokers)
	if err != nil {
		return err
	}
	defer producer.Close()
	relay := outbox.NewRelay(pool, producer, rt.Log, rt.Metrics, outbox.RelayConfig{})

	store := postgres.New(pool, relay.Notify)
	svc := app.New(store, grpcclients.NewCoins(coinsv1.NewCoinsServiceClient(coinsConn)),
		grpcclients.NewUsers(userv1.NewUserServiceClient(userConn)), rt.Log)
	// A failure here is not fatal: the catalog is read on the first miss.
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := svc.LoadCatalog(lctx); err != nil {
		rt.Log.Warn("catalog not cached at start", "error", err)
	}
	cancel()

	merchv1.RegisterMerchServiceServer(rt.GRPC.Server, grpctransport.New(svc, rt.Log))
	return rt.Run(ctx, relay.Run, svc.Recovery(recovery))
}
