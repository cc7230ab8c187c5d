// Command merch serves the catalog and the purchase saga.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	ydbsdk "github.com/ydb-platform/ydb-go-sdk/v3"

	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	merchv1 "github.com/merchshop/merchshop/gen/merch/v1"
	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	pkgapp "github.com/merchshop/merchshop/pkg/app"
	"github.com/merchshop/merchshop/pkg/service"
	"github.com/merchshop/merchshop/services/merch/internal/adapters/grpcclients"
	"github.com/merchshop/merchshop/services/merch/internal/adapters/postgres"
	ydbstore "github.com/merchshop/merchshop/services/merch/internal/adapters/ydb"
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

// ydbSettings are read only with MERCH_STORE=ydb.
type ydbSettings struct {
	endpoint, database, prefix, token string
}

func run() error {
	ctx, stop := pkgapp.SignalContext()
	defer stop()

	rt := service.Init("merch", "127.0.0.1:50054", "127.0.0.1:8084")
	storeKind := rt.Env.String("MERCH_STORE", "postgres")
	recovery := app.RecoveryConfig{
		Interval: rt.Env.Duration("MERCH_RECOVERY_INTERVAL", 5*time.Second),
		Age:      rt.Env.Duration("MERCH_RECOVERY_AGE", 10*time.Second),
		Batch:    rt.Env.Int("MERCH_RECOVERY_BATCH", 20),
	}
	var yc ydbSettings
	switch storeKind {
	case "postgres":
	case "ydb":
		yc = ydbSettings{
			endpoint: rt.Env.String("YDB_ENDPOINT", "grpc://127.0.0.1:2136"),
			database: rt.Env.String("YDB_DATABASE", "/local"),
			prefix:   rt.Env.String("YDB_TABLE_PREFIX", ""),
			token:    rt.Env.String("YDB_ACCESS_TOKEN", ""),
		}
	default:
		return fmt.Errorf("MERCH_STORE=%q: want postgres or ydb", storeKind)
	}
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

	// The store: one interface, two databases.
	var store app.Store
	switch storeKind {
	case "ydb":
		db, err := ydbstore.Open(ctx, yc.endpoint, yc.database, ydbOptions(yc)...)
		if err != nil {
			return err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = db.Close(cctx)
		}()
		cfg := ydbstore.Config{Prefix: yc.prefix}
		s, err := ydbstore.New(db, cfg)
		if err != nil {
			return err
		}
		mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = s.Migrate(mctx)
		cancel()
		if err != nil {
			return err
		}
		rt.AddReadiness("ydb", func(ctx context.Context) error { return ydbstore.Ping(ctx, db) })
		store = s
	default:
		pool, err := rt.Postgres(ctx, "postgres://merch@127.0.0.1:5432/merch?sslmode=disable", 40, migrations.FS, ".")
		if err != nil {
			return err
		}
		defer pool.Close()
		store = postgres.New(pool)
	}

	svc := app.New(store, grpcclients.NewCoins(coinsv1.NewCoinsServiceClient(coinsConn)),
		grpcclients.NewUsers(userv1.NewUserServiceClient(userConn)), rt.Log)
	// A failure here is not fatal: the catalog is read on the first miss.
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := svc.LoadCatalog(lctx); err != nil {
		rt.Log.Warn("catalog not cached at start", "error", err)
	}
	cancel()

	merchv1.RegisterMerchServiceServer(rt.GRPC.Server, grpctransport.New(svc, rt.Log))
	return rt.Run(ctx, svc.Recovery(recovery))
}

// ydbOptions: an access token if one is set, anonymous otherwise (a local
// YDB, or one reached through a sidecar that authenticates).
func ydbOptions(yc ydbSettings) []ydbsdk.Option {
	if yc.token != "" {
		return []ydbsdk.Option{ydbsdk.WithAccessTokenCredentials(yc.token)}
	}
	return []ydbsdk.Option{ydbsdk.WithAnonymousCredentials()}
}
