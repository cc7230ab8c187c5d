// Command user runs the user service: users and credentials, inventories,
// item grants (called by the purchase saga). It publishes no events.
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	"github.com/merchshop/merchshop/pkg/app"
	"github.com/merchshop/merchshop/pkg/service"
	"github.com/merchshop/merchshop/pkg/viewcache"
	"github.com/merchshop/merchshop/services/user/internal/adapters/bcrypt"
	"github.com/merchshop/merchshop/services/user/internal/adapters/credcache"
	"github.com/merchshop/merchshop/services/user/internal/adapters/postgres"
	userapp "github.com/merchshop/merchshop/services/user/internal/app"
	grpctransport "github.com/merchshop/merchshop/services/user/internal/transport/grpc"
	"github.com/merchshop/merchshop/services/user/migrations"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "user:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := app.SignalContext()
	defer stop()

	rt := service.Init("user", "127.0.0.1:50052", "127.0.0.1:8082")
	cost := rt.Env.Int("USER_BCRYPT_COST", 10)
	// The bcrypt pool (internal/adapters/bcrypt): hashes and comparisons
	// running at once (0: one per core of GOMAXPROCS), waiting at most (0: 32 per
	// worker) and for how long; past them a login is refused with
	// ResourceExhausted (503 at the gateway) instead of queueing for
	// seconds.
	bcryptWorkers := rt.Env.Int("USER_BCRYPT_WORKERS", 0)
	bcryptQueue := rt.Env.Int("USER_BCRYPT_QUEUE", 0)
	bcryptWait := rt.Env.Duration("USER_BCRYPT_MAX_WAIT", bcrypt.DefaultMaxWait)
	cacheSize := rt.Env.Int("USER_CREDENTIAL_CACHE_SIZE", 100_000)
	cacheTTL := rt.Env.Duration("USER_CREDENTIAL_CACHE_TTL", 10*time.Minute)
	// The info view cache (pkg/viewcache): on in every service or in none.
	viewsOn := rt.Env.Bool("VIEW_CACHE", true)
	redisAddr := rt.Env.String("REDIS_ADDR", "127.0.0.1:6379")
	if err := rt.ConfigErr(); err != nil {
		return err
	}
	hasher, err := bcrypt.New(bcrypt.Config{
		Cost: cost, Workers: bcryptWorkers, MaxWaiting: bcryptQueue, MaxWait: bcryptWait, Metrics: rt.Metrics,
	})
	if err != nil {
		return fmt.Errorf("USER_BCRYPT_*: %w", err)
	}
	rt.Log.Info("bcrypt pool", "cost", cost, "workers", bcryptWorkers, "queue", bcryptQueue, "max_wait", bcryptWait.String(),
		"cpus", runtime.NumCPU(), "gomaxprocs", runtime.GOMAXPROCS(0))

	pool, err := rt.Postgres(ctx, "postgres://merch@127.0.0.1:5432/users?sslmode=disable", 40, migrations.FS, ".")
	if err != nil {
		return err
	}
	defer pool.Close()

	var cache userapp.CredentialCache
	if cacheSize > 0 && cacheTTL > 0 {
		cache = credcache.New(cacheSize, cacheTTL, rt.Metrics)
	}
	svc := userapp.New(postgres.New(pool), hasher, cache, rt.Log)
	if viewsOn {
		rdb := viewcache.NewClient(redisAddr)
		defer func() { _ = rdb.Close() }()
		svc.WithViews(viewcache.NewWriter(rdb, viewcache.WriterConfig{}))
	}
	rt.Log.Info("view cache", "on", viewsOn, "redis", redisAddr)
	userv1.RegisterUserServiceServer(rt.GRPC.Server, grpctransport.New(svc, rt.Log))

	return rt.Run(ctx)
}
