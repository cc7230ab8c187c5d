// Command coins runs the coins service: accounts and the ledger over gRPC,
// and the outbox relay that publishes the ledger's transactions to Kafka.
package main

import (
	"context"
	"os"

	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	"github.com/merchshop/merchshop/pkg/app"
	"github.com/merchshop/merchshop/pkg/kafka"
	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/pkg/service"
	"github.com/merchshop/merchshop/pkg/viewcache"

	pgstore "github.com/merchshop/merchshop/services/coins/internal/adapters/postgres"
	coinsapp "github.com/merchshop/merchshop/services/coins/internal/app"
	grpctransport "github.com/merchshop/merchshop/services/coins/internal/transport/grpc"
	"github.com/merchshop/merchshop/services/coins/migrations"
)

func main() {
	ctx, stop := app.SignalContext()
	defer stop()
	if err := run(ctx); err != nil {
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	rt := service.Init("coins", "127.0.0.1:50053", "127.0.0.1:8083")
	brokers := rt.Env.List("KAFKA_BROKERS", []string{"127.0.0.1:9092"})
	attempts := rt.Env.Int("TX_ATTEMPTS", pgstore.DefaultAttempts)
	// The info view cache (pkg/viewcache): on in every service or in none.
	viewsOn := rt.Env.Bool("VIEW_CACHE", true)
	redisAddr := rt.Env.String("REDIS_ADDR", "127.0.0.1:6379")
	if err := rt.ConfigErr(); err != nil {
		rt.Log.Error("bad configuration", "error", err)
		return err
	}

	pool, err := rt.Postgres(ctx, "postgres://merch@127.0.0.1:5432/coins?sslmode=disable", 40, migrations.FS, ".")
	if err != nil {
		rt.Log.Error("postgres", "error", err)
		return err
	}
	defer pool.Close()
	if err := outbox.Migrate(ctx, pool); err != nil {
		rt.Log.Error("outbox migrations", "error", err)
		return err
	}

	producer, err := kafka.NewProducer(brokers)
	if err != nil {
		rt.Log.Error("kafka producer", "error", err)
		return err
	}
	defer producer.Close()
	relay := outbox.NewRelay(pool, producer, rt.Log, rt.Metrics, outbox.RelayConfig{})

	svc := coinsapp.New(pgstore.New(pool, attempts), relay)
	if viewsOn {
		rdb := viewcache.NewClient(redisAddr)
		defer func() { _ = rdb.Close() }()
		svc.WithViews(viewcache.NewWriter(rdb, viewcache.WriterConfig{}), rt.Log)
	}
	rt.Log.Info("view cache", "on", viewsOn, "redis", redisAddr)

	coinsv1.RegisterCoinsServiceServer(rt.GRPC.Server, grpctransport.New(svc, rt.Log))
	return rt.Run(ctx, relay.Run)
}
