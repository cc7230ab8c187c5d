// Command gateway is the HTTP edge of Merch Shop: the public JSON API
// (grpc-gateway, ShopService served in-process) over the backend services,
// with /healthz, /readyz and /metrics on the same port.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	infov1 "github.com/merchshop/merchshop/gen/info/v1"
	merchv1 "github.com/merchshop/merchshop/gen/merch/v1"
	"github.com/merchshop/merchshop/pkg/app"
	"github.com/merchshop/merchshop/pkg/config"
	"github.com/merchshop/merchshop/pkg/grpcclient"
	"github.com/merchshop/merchshop/pkg/httpserver"
	"github.com/merchshop/merchshop/pkg/logging"
	"github.com/merchshop/merchshop/pkg/metrics"
	"github.com/merchshop/merchshop/services/gateway/internal/adapters/redis"
	shop "github.com/merchshop/merchshop/services/gateway/internal/app"
	"github.com/merchshop/merchshop/services/gateway/internal/token"
	"github.com/merchshop/merchshop/services/gateway/internal/transport/httpapi"
)

func main() {
	ctx, stop := app.SignalContext()
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	env := config.FromOS()
	log := logging.New("gateway", env.String("LOG_LEVEL", "info"))
	reg := metrics.New()

	httpAddr := env.String("HTTP_ADDR", "127.0.0.1:8080")
	rpcTimeout := env.Duration("RPC_TIMEOUT", 3*time.Second)
	grace := env.Duration("SHUTDOWN_GRACE", 10*time.Second)
	redisAddr := env.String("REDIS_ADDR", "127.0.0.1:6379")
	replayOn := env.Bool("IDEMPOTENCY_CACHE", true)
	secure := env.Bool("GATEWAY_SECURE_COOKIES", false)
	maxBody := env.Int("MAX_BODY_BYTES", httpapi.DefaultMaxBodyBytes)
	targets := []struct{ name, env, def string }{
		{"auth", "AUTH_TARGET", "127.0.0.1:50051"},
		{"user", "USER_TARGET", "127.0.0.1:50052"},
		{"coins", "COINS_TARGET", "127.0.0.1:50053"},
		{"merch", "MERCH_TARGET", "127.0.0.1:50054"},
		{"info", "INFO_TARGET", "127.0.0.1:50055"},
	}
	addrs := map[string]string{}
	for _, t := range targets {
		addrs[t.name] = env.String(t.env, t.def)
	}
	if err := env.Err(); err != nil {
		return err
	}

	ready := map[string]httpserver.Check{}
	conns := map[string]*grpc.ClientConn{}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for _, t := range targets {
		conn, err := grpcclient.Dial(addrs[t.name], rpcTimeout, reg)
		if err != nil {
			return err
		}
		conns[t.name] = conn
		ready[t.name] = grpcclient.HealthCheck(addrs[t.name], conn)
	}

	authClient := authv1.NewAuthServiceClient(conns["auth"])
	verifier := token.New(authClient, log, token.Config{OnFetch: keyFetchCounter(reg)})
	ready["token-keys"] = verifier.Check

	var replay httpapi.ReplayStore
	if replayOn {
		rdb := redis.NewClient(redisAddr)
		defer func() { _ = rdb.Close() }()
		cache := redis.New(rdb, redis.Config{})
		replay = cache
		ready["redis"] = cache.Check
	}

	shopSrv := shop.New(shop.Backends{
		Auth:  authClient,
		Coins: coinsv1.NewCoinsServiceClient(conns["coins"]),
		Merch: merchv1.NewMerchServiceClient(conns["merch"]),
		Info:  infov1.NewInfoServiceClient(conns["info"]),
	}, log)
	handler, err := httpapi.New(ctx, httpapi.Config{
		Shop:          shopSrv,
		Verifier:      verifier,
		Replay:        replay,
		Ready:         ready,
		Metrics:       reg,
		Log:           log,
		MaxBodyBytes:  int64(maxBody),
		SecureCookies: secure,
	})
	if err != nil {
		return err
	}
	srv := httpserver.New(httpAddr, handler)
	log.Info("starting", "http", httpAddr, "auth", addrs["auth"], "coins", addrs["coins"], "merch", addrs["merch"], "info", addrs["info"], "user", addrs["user"], "redis", redisAddr, "idempotency_cache", replayOn)
	return app.Run(ctx, log,
		func(ctx context.Context) error { return httpserver.Run(ctx, log, srv, grace) },
		verifier.Run,
	)
}

func keyFetchCounter(reg *metrics.Registry) func(error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_jwt_key_fetch_total", Help: "Fetches of the token verification keys from auth, by result.",
	}, []string{"result"})
	reg.MustRegister(c)
	return func(err error) {
		if err != nil {
			c.WithLabelValues("error").Inc()
			return
		}
		c.WithLabelValues("ok").Inc()
	}
}
