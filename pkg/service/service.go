// Package service is the start-up shared by the backend services: settings
// common to all, logger, metrics, gRPC server, admin HTTP server, backend
// connections and PostgreSQL with migrations. A main builds its own parts
// between Init and Run.
package service

import (
	"context"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/merchshop/merchshop/pkg/app"
	"github.com/merchshop/merchshop/pkg/config"
	"github.com/merchshop/merchshop/pkg/grpcclient"
	"github.com/merchshop/merchshop/pkg/grpcserver"
	"github.com/merchshop/merchshop/pkg/httpserver"
	"github.com/merchshop/merchshop/pkg/logging"
	"github.com/merchshop/merchshop/pkg/metrics"
	"github.com/merchshop/merchshop/pkg/postgres"
)

// Runtime is what every service has.
type Runtime struct {
	Name    string
	Log     *slog.Logger
	Metrics *metrics.Registry
	Env     *config.Env
	GRPC    *grpcserver.Server

	grpcAddr   string
	adminAddr  string
	pprof      bool
	rpcTimeout time.Duration
	grace      time.Duration
	ready      map[string]httpserver.Check
	conns      []*grpc.ClientConn
}

// Init reads the common settings: LOG_LEVEL, GRPC_ADDR, ADMIN_ADDR (the
// /metrics, /healthz, /readyz and pprof port), PPROF, RPC_TIMEOUT (default
// deadline of outgoing calls) and SHUTDOWN_GRACE.
func Init(name, defaultGRPC, defaultAdmin string) *Runtime {
	env := config.FromOS()
	log := logging.New(name, env.String("LOG_LEVEL", "info"))
	reg := metrics.New()
	return &Runtime{
		Name: name, Log: log, Metrics: reg, Env: env,
		GRPC:       grpcserver.New(log, reg),
		grpcAddr:   env.String("GRPC_ADDR", defaultGRPC),
		adminAddr:  env.String("ADMIN_ADDR", defaultAdmin),
		pprof:      env.Bool("PPROF", false),
		rpcTimeout: env.Duration("RPC_TIMEOUT", 3*time.Second),
		grace:      env.Duration("SHUTDOWN_GRACE", 10*time.Second),
		ready:      map[string]httpserver.Check{},
	}
}

// Dial connects to the backend whose target is in envKey (default def) and
// adds it to the readiness checks.
func (r *Runtime) Dial(name, envKey, def string) (*grpc.ClientConn, error) {
	target := r.Env.String(envKey, def)
	conn, err := grpcclient.Dial(target, r.rpcTimeout, r.Metrics)
	if err != nil {
		return nil, err
	}
	r.conns = append(r.conns, conn)
	r.AddReadiness(name, grpcclient.HealthCheck(target, conn))
	return conn, nil
}

// AddReadiness adds a check to /readyz.
func (r *Runtime) AddReadiness(name string, c httpserver.Check) { r.ready[name] = c }

// Postgres connects to the database in DATABASE_URL (default def), applies
// the service's migrations from dir of fsys, and adds the database to the
// readiness checks. A service that publishes events applies the outbox's
// own migrations too (outbox.Migrate).
func (r *Runtime) Postgres(ctx context.Context, def string, maxConns int32, fsys fs.FS, dir string) (*pgxpool.Pool, error) {
	dsn := r.Env.String("DATABASE_URL", def)
	pool, err := postgres.Connect(ctx, r.Log, dsn, int32(r.Env.Int("DATABASE_MAX_CONNS", int(maxConns))), r.Env.Duration("DATABASE_WAIT", 60*time.Second))
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool, fsys, dir, "schema_version"); err != nil {
		pool.Close()
		return nil, err
	}
	r.AddReadiness("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
	return pool, nil
}

// ConfigErr reports malformed settings read so far.
func (r *Runtime) ConfigErr() error { return r.Env.Err() }

// Run marks the gRPC server serving and runs it, the admin server and the
// extra components until ctx ends; then it closes backend connections.
func (r *Runtime) Run(ctx context.Context, extra ...app.Component) error {
	defer func() {
		for _, c := range r.conns {
			_ = c.Close()
		}
	}()
	admin := httpserver.New(r.adminAddr, httpserver.AdminMux(httpserver.AdminOptions{
		Registry: r.Metrics, Ready: r.ready, Pprof: r.pprof,
	}))
	components := append([]app.Component{
		func(ctx context.Context) error { return r.GRPC.Serve(ctx, r.grpcAddr, r.grace) },
		func(ctx context.Context) error { return httpserver.Run(ctx, r.Log, admin, r.grace) },
	}, extra...)
	r.GRPC.SetServing()
	r.Log.Info("started", "grpc", r.grpcAddr, "admin", r.adminAddr)
	return app.Run(ctx, r.Log, components...)
}
