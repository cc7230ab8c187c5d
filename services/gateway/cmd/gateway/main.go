// Command gateway is the HTTP edge of Merch Shop: the public JSON API
// (grpc-gateway, ShopService served in-process) over the backend services,
// with /healthz, /readyz and /metrics on the same port.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	"github.com/merchshop/merchshop/pkg/viewcache"
	"github.com/merchshop/merchshop/services/gateway/internal/adapters/redis"
	"github.com/merchshop/merchshop/services/gateway/internal/admission"
	shop "github.com/merchshop/merchshop/services/gateway/internal/app"
	"github.com/merchshop/merchshop/services/gateway/internal/ratelimit"
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
	// The info view cache (pkg/viewcache): on in every service or in none
	// (coins and user tell it of their writes).
	viewsOn := env.Bool("VIEW_CACHE", true)
	viewTTL := env.Duration("VIEW_CACHE_TTL", viewcache.DefaultTTL)
	secure := env.Bool("GATEWAY_SECURE_COOKIES", false)
	maxBody := env.Int("MAX_BODY_BYTES", httpapi.DefaultMaxBodyBytes)
	limits, limitsErr := readLoginLimits(env)
	trusted, trustedErr := httpapi.ParseTrustedProxies(env.List("GATEWAY_TRUSTED_PROXIES", nil))
	srvLimits := readServerLimits(env)
	adm := readAdmission(env)
	// The gateway's public port serves /metrics and the probes; profiles
	// get a listener of their own (PPROF=true), never the public one.
	// Verified tokens kept (0: the default, 100 000; negative: off).
	tokenCache := env.Int("TOKEN_CACHE_ENTRIES", 0)
	pprofOn := env.Bool("PPROF", false)
	pprofAddr := env.String("PPROF_ADDR", "127.0.0.1:8086")
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
	if err := errors.Join(env.Err(), limitsErr, trustedErr); err != nil {
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
	verifier := token.New(authClient, log, token.Config{OnFetch: keyFetchCounter(reg), CacheEntries: tokenCache})
	ready["token-keys"] = verifier.Check

	var replay httpapi.ReplayStore
	var rateStore ratelimit.Store
	var views shop.ViewCache
	if replayOn || limits.redis || viewsOn {
		rdb := redis.NewClient(redisAddr)
		defer func() { _ = rdb.Close() }()
		cache := redis.New(rdb, redis.Config{})
		ready["redis"] = cache.Check
		if replayOn {
			replay = cache
		}
		if limits.redis {
			rateStore = redis.NewRateStore(rdb)
		}
		if viewsOn {
			views = viewcache.NewReader(rdb, viewTTL)
		}
	}
	var loginLimiter httpapi.LoginLimiter
	if limits.perUser.Enabled() || limits.perAddr.Enabled() {
		loginLimiter = ratelimit.NewLogin(ratelimit.Config{
			PerUser: limits.perUser,
			PerAddr: limits.perAddr,
			Shared:  rateStore,
			Memory:  ratelimit.NewMemory(limits.memoryKeys),
			Log:     log,
			Obs:     loginLimitMetrics(reg),
		})
	}

	shopSrv := shop.New(shop.Backends{
		Auth:  authClient,
		Coins: coinsv1.NewCoinsServiceClient(conns["coins"]),
		Merch: merchv1.NewMerchServiceClient(conns["merch"]),
		Info:  infov1.NewInfoServiceClient(conns["info"]),
	}, log)
	if views != nil {
		shopSrv.WithViews(views, viewCacheCounter(reg))
	}
	apiAdmission, loginAdmission, writeAdmission, err := adm.limiters(reg)
	if err != nil {
		return err
	}
	handler, err := httpapi.New(ctx, httpapi.Config{
		Shop:           shopSrv,
		Verifier:       verifier,
		Replay:         replay,
		Ready:          ready,
		Metrics:        reg,
		Log:            log,
		MaxBodyBytes:   int64(maxBody),
		SecureCookies:  secure,
		LoginLimiter:   loginLimiter,
		TrustedProxies: trusted,
		Admission:      apiAdmission,
		LoginAdmission: loginAdmission,
		WriteAdmission: writeAdmission,
	})
	if err != nil {
		return err
	}
	srv := httpserver.New(httpAddr, handler)
	srvLimits.apply(srv)
	log.Info("starting", "http", httpAddr, "auth", addrs["auth"], "coins", addrs["coins"], "merch", addrs["merch"], "info", addrs["info"], "user", addrs["user"], "redis", redisAddr, "idempotency_cache", replayOn, "view_cache", viewsOn,
		"login_limit_user", limits.perUser.String(), "login_limit_addr", limits.perAddr.String(), "login_limit_redis", limits.redis,
		"trusted_proxies", len(trusted), "read_header_timeout", srv.ReadHeaderTimeout, "read_timeout", srv.ReadTimeout,
		"max_inflight", adm.maxInFlight, "min_inflight", adm.minInFlight, "latency_target", adm.latencyTarget,
		"queue_timeout", adm.queueTimeout, "max_queue", adm.maxQueue, "login_max_inflight", adm.loginMaxInFlight)
	runs := []app.Component{
		func(ctx context.Context) error { return httpserver.Run(ctx, log, srv, grace) },
		verifier.Run,
	}
	if pprofOn {
		mux := http.NewServeMux()
		httpserver.MountPprof(mux)
		psrv := httpserver.New(pprofAddr, mux)
		// A CPU profile streams for as long as it was asked to run.
		psrv.WriteTimeout = 0
		runs = append(runs, func(ctx context.Context) error { return httpserver.Run(ctx, log, psrv, grace) })
	}
	return app.Run(ctx, log, runs...)
}

// loginLimits are the settings of the POST /api/auth rate limits.
type loginLimits struct {
	perUser, perAddr ratelimit.Rule
	redis            bool
	memoryKeys       int
}

// readLoginLimits reads AUTH_RATE_PER_USER (failed attempts per username,
// default 10/1m), AUTH_RATE_PER_IP (per client address, default 100/1m),
// their *_BURST (default: the N of the rate), AUTH_RATE_LIMIT_REDIS (share
// the buckets through Redis, default on) and AUTH_RATE_LIMIT_MEMORY_KEYS
// (the in-memory fallback's bound). "off" disables a limit.
func readLoginLimits(env *config.Env) (loginLimits, error) {
	var l loginLimits
	var errUser, errAddr error
	l.perUser, errUser = ratelimit.ParseRule(env.String("AUTH_RATE_PER_USER", "10/1m"), env.Int("AUTH_RATE_PER_USER_BURST", 0))
	l.perAddr, errAddr = ratelimit.ParseRule(env.String("AUTH_RATE_PER_IP", "100/1m"), env.Int("AUTH_RATE_PER_IP_BURST", 0))
	l.redis = env.Bool("AUTH_RATE_LIMIT_REDIS", true)
	l.memoryKeys = env.Int("AUTH_RATE_LIMIT_MEMORY_KEYS", ratelimit.DefaultMaxKeys)
	if errUser != nil {
		errUser = fmt.Errorf("AUTH_RATE_PER_USER: %w", errUser)
	}
	if errAddr != nil {
		errAddr = fmt.Errorf("AUTH_RATE_PER_IP: %w", errAddr)
	}
	return l, errors.Join(errUser, errAddr)
}

func loginLimitMetrics(reg *metrics.Registry) ratelimit.Observer {
	decided := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_login_rate_limit_total",
		Help: "POST /api/auth attempts by the rate limiter's decision (allowed, limited_user, limited_addr).",
	}, []string{"result"})
	fallback := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gateway_login_rate_limit_fallback_total",
		Help: "Login rate limit decisions made by this replica's in-memory limiter because Redis failed.",
	})
	reg.MustRegister(decided, fallback)
	return ratelimit.Observer{
		Decided:  func(result string) { decided.WithLabelValues(result).Inc() },
		Fallback: fallback.Inc,
	}
}

// admissionSettings bound the requests the gateway works on at once
// (internal/admission); past them a request is answered 503 with
// Retry-After within the queue timeout.
//
// The defaults are sized for the local set-up, the whole system on 2
// cores: the mixed load saturates there at ~1300 requests a second, so 64
// in flight queue ~50 ms in the backends at most (the SLI's p99), and the
// adaptive limit (GATEWAY_TARGET_LATENCY, the SLI's 50 ms) lowers that to
// 32 when the backends are slower. The floor is high on purpose: here the
// tail latency comes as much from the cores shared with the databases as
// from queueing, and 1000 requests a second at ~20 ms keep ~20 in flight,
// which a lower floor would start refusing. A request waits 40 ms for a slot at
// most, so a refusal is answered within 50 ms; the queue holds up to eight
// times the limit (GATEWAY_MAX_QUEUE), so what bounds a wait is its time.
// Measured (info at 3000 req/s, p99 14 ms): with 25 ms and a queue as long
// as the limit, the pauses of a one-P gateway on shared cores refused 50 of
// 90000 requests (123 with the queue full, 349 timed out over a session);
// with 40 ms and 512, none. Logins have 32 slots of
// their own without adaptation (a first login is a bcrypt hash, ~60 ms of a
// core, a repeated one ~1 ms: their latency says little about the load):
// enough for 1000 repeated logins a second, and past the bcrypt pool of
// the user service the excess is refused instead of queued for seconds.
//
// Writes (sendCoin, buy) have a pool of their own, GATEWAY_WRITE_MAX_INFLIGHT
// (24, adaptive down to GATEWAY_WRITE_MIN_INFLIGHT, 16): a write costs ten
// times a read, and at the mixed capacity here ~400 writes a second at
// 10-20 ms keep 4-8 in flight; bounding them keeps CPU for the reads.
type admissionSettings struct {
	maxInFlight, minInFlight, maxQueue, loginMaxInFlight int
	writeMaxInFlight, writeMinInFlight                   int
	queueTimeout, latencyTarget                          time.Duration
}

// readAdmission reads GATEWAY_MAX_INFLIGHT (64; 0: no bound),
// GATEWAY_MIN_INFLIGHT (32), GATEWAY_TARGET_LATENCY (50ms; 0: the limit
// stays at the max), GATEWAY_QUEUE_TIMEOUT (40ms), GATEWAY_MAX_QUEUE
// (waiting at once, default eight times the max in flight) and
// GATEWAY_LOGIN_MAX_INFLIGHT (32; 0: no bound; its queue is as long).
func readAdmission(env *config.Env) admissionSettings {
	a := admissionSettings{
		maxInFlight:      env.Int("GATEWAY_MAX_INFLIGHT", 64),
		minInFlight:      env.Int("GATEWAY_MIN_INFLIGHT", 32),
		latencyTarget:    env.Duration("GATEWAY_TARGET_LATENCY", 50*time.Millisecond),
		queueTimeout:     env.Duration("GATEWAY_QUEUE_TIMEOUT", 40*time.Millisecond),
		maxQueue:         env.Int("GATEWAY_MAX_QUEUE", 0),
		loginMaxInFlight: env.Int("GATEWAY_LOGIN_MAX_INFLIGHT", 32),
		writeMaxInFlight: env.Int("GATEWAY_WRITE_MAX_INFLIGHT", 24),
		writeMinInFlight: env.Int("GATEWAY_WRITE_MIN_INFLIGHT", 16),
	}
	if a.maxQueue <= 0 {
		a.maxQueue = 8 * a.maxInFlight
	}
	a.minInFlight = min(a.minInFlight, a.maxInFlight)
	a.writeMinInFlight = min(a.writeMinInFlight, a.writeMaxInFlight)
	return a
}

// limiters builds the API, the login and the write limiters (nil when off)
// with their metrics.
func (a admissionSettings) limiters(reg *metrics.Registry) (api, login, write httpapi.Admitter, err error) {
	decided := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_admission_total",
		Help: "Admission decisions by pool (api, login, write) and result (admitted, refused_queue_full, refused_timeout, canceled).",
	}, []string{"pool", "result"})
	reg.MustRegister(decided)
	build := func(pool string, cfg admission.Config) (httpapi.Admitter, error) {
		if cfg.MaxInFlight <= 0 {
			return nil, nil
		}
		for _, r := range []admission.Result{admission.Admitted, admission.RefusedFull, admission.RefusedTimeout, admission.Canceled} {
			decided.WithLabelValues(pool, string(r))
		}
		cfg.Decided = func(r admission.Result) { decided.WithLabelValues(pool, string(r)).Inc() }
		l, err := admission.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s admission: %w", pool, err)
		}
		labels := prometheus.Labels{"pool": pool}
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_admission_in_flight", Help: "Requests admitted and not yet answered, by pool.", ConstLabels: labels},
				func() float64 { return float64(l.Stats().InFlight) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_admission_limit", Help: "The admission limit (requests in flight at most), by pool.", ConstLabels: labels},
				func() float64 { return float64(l.Stats().Limit) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_admission_waiting", Help: "Requests waiting for an admission slot, by pool.", ConstLabels: labels},
				func() float64 { return float64(l.Stats().Waiting) }),
		)
		return l, nil
	}
	api, err = build("api", admission.Config{
		MaxInFlight: a.maxInFlight, MinInFlight: a.minInFlight, LatencyTarget: a.latencyTarget,
		QueueTimeout: a.queueTimeout, MaxQueue: a.maxQueue,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	login, err = build("login", admission.Config{
		MaxInFlight: a.loginMaxInFlight, MinInFlight: a.loginMaxInFlight,
		QueueTimeout: a.queueTimeout, MaxQueue: a.loginMaxInFlight,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	write, err = build("write", admission.Config{
		MaxInFlight: a.writeMaxInFlight, MinInFlight: a.writeMinInFlight, LatencyTarget: a.latencyTarget,
		QueueTimeout: a.queueTimeout, MaxQueue: 8 * a.writeMaxInFlight,
	})
	return api, login, write, err
}

// serverLimits override the HTTP server's timeouts and header limit
// (HTTP_READ_HEADER_TIMEOUT, HTTP_READ_TIMEOUT, HTTP_WRITE_TIMEOUT,
// HTTP_IDLE_TIMEOUT, HTTP_MAX_HEADER_BYTES); unset ones keep
// httpserver.New's defaults.
type serverLimits struct {
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}

func readServerLimits(env *config.Env) serverLimits {
	return serverLimits{
		readHeader:     env.Duration("HTTP_READ_HEADER_TIMEOUT", 0),
		read:           env.Duration("HTTP_READ_TIMEOUT", 0),
		write:          env.Duration("HTTP_WRITE_TIMEOUT", 0),
		idle:           env.Duration("HTTP_IDLE_TIMEOUT", 0),
		maxHeaderBytes: env.Int("HTTP_MAX_HEADER_BYTES", 0),
	}
}

func (l serverLimits) apply(srv *http.Server) {
	if l.readHeader > 0 {
		srv.ReadHeaderTimeout = l.readHeader
	}
	if l.read > 0 {
		srv.ReadTimeout = l.read
	}
	if l.write > 0 {
		srv.WriteTimeout = l.write
	}
	if l.idle > 0 {
		srv.IdleTimeout = l.idle
	}
	if l.maxHeaderBytes > 0 {
		srv.MaxHeaderBytes = l.maxHeaderBytes
	}
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

// viewCacheCounter counts the info view cache's lookups by outcome.
func viewCacheCounter(reg *metrics.Registry) func(string) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_view_cache_total",
		Help: "GET /api/info view cache outcomes: hit, miss, busy (a write pending), stored, error.",
	}, []string{"result"})
	reg.MustRegister(c)
	for _, r := range []string{"hit", "miss", "busy", "stored", "error"} {
		c.WithLabelValues(r)
	}
	return func(r string) { c.WithLabelValues(r).Inc() }
}
