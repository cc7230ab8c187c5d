// Command info serves the caller's overview and the itemised history, and
// projects the transactions topic into ClickHouse.
package main

import (
	"fmt"
	"os"

	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	infov1 "github.com/merchshop/merchshop/gen/info/v1"
	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	pkgapp "github.com/merchshop/merchshop/pkg/app"
	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/kafka"
	"github.com/merchshop/merchshop/pkg/service"
	"github.com/merchshop/merchshop/services/info/internal/adapters/clickhouse"
	"github.com/merchshop/merchshop/services/info/internal/adapters/consumer"
	"github.com/merchshop/merchshop/services/info/internal/adapters/grpcclients"
	"github.com/merchshop/merchshop/services/info/internal/app"
	grpctransport "github.com/merchshop/merchshop/services/info/internal/transport/grpc"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "info:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := pkgapp.SignalContext()
	defer stop()

	rt := service.Init("info", "127.0.0.1:50055", "127.0.0.1:8085")
	chCfg := clickhouse.Config{
		Addr:     rt.Env.String("CLICKHOUSE_ADDR", "127.0.0.1:9000"),
		Database: rt.Env.String("CLICKHOUSE_DATABASE", "merch"),
		Username: rt.Env.String("CLICKHOUSE_USER", "default"),
		Password: rt.Env.String("CLICKHOUSE_PASSWORD", ""),
		Wait:     rt.Env.Duration("CLICKHOUSE_WAIT", 0),
	}
	brokers := rt.Env.List("KAFKA_BROKERS", []string{"127.0.0.1:9092"})
	if err := rt.ConfigErr(); err != nil {
		return err
	}

	coinsConn, err := rt.Dial("coins", "COINS_TARGET", "127.0.0.1:50053")
	if err != nil {
		return err
	}
	userConn, err := rt.Dial("user", "USER_TARGET", "127.0.0.1:50052")
	if err != nil {
		return err
	}

	store, err := clickhouse.Open(ctx, chCfg, rt.Log)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	rt.AddReadiness("clickhouse", store.Ping)

	handler := consumer.NewHandler(store, rt.Log)
	cons, err := kafka.NewConsumer(kafka.ConsumerConfig{
		Brokers: brokers, Group: consumer.Group, Topics: []string{events.TopicTransactions},
		// Batches of up to half a second: one ClickHouse insert (one new
		// part to merge) per batch instead of per few events.
		MinBytes: 64 << 10,
	}, rt.Log, handler.Handle)
	if err != nil {
		return err
	}

	svc := app.New(grpcclients.NewCoins(coinsv1.NewCoinsServiceClient(coinsConn)),
		grpcclients.NewUsers(userv1.NewUserServiceClient(userConn)), store)
	infov1.RegisterInfoServiceServer(rt.GRPC.Server, grpctransport.New(svc, rt.Log))
	return rt.Run(ctx, cons.Run)
}
