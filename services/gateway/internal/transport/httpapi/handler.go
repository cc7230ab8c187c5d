// Package httpapi is the gateway's HTTP edge: a grpc-gateway mux serving the
// public ShopService in-process, with the API's JSON and error contract, the
// JWT check, the idempotency replay cache, the login rate limit, admission
// (bounded requests in flight, 503 past them), body limits,
// metrics and the admin endpoints (/healthz, /readyz, /metrics) on the same
// port.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/metadata"

	shopv1 "github.com/merchshop/merchshop/gen/shop/v1"
	"github.com/merchshop/merchshop/pkg/httpserver"
	"github.com/merchshop/merchshop/pkg/identity"
	"github.com/merchshop/merchshop/pkg/metrics"
	"github.com/merchshop/merchshop/services/gateway/internal/app"
)

// DefaultMaxBodyBytes bounds request bodies.
const DefaultMaxBodyBytes = 64 << 10

// Verifier checks bearer tokens. Until Ready, it cannot check any (its keys
// are not loaded: an outage, answered 503); after that, a Verify error
// refuses the token (401).
type Verifier interface {
	Ready() bool
	Verify(ctx context.Context, raw string) (identity.Caller, error)
}

// Config is what New needs.
type Config struct {
	Shop     shopv1.ShopServiceServer
	Verifier Verifier
	// Replay is the idempotency replay cache; nil disables it.
	Replay ReplayStore
	// Ready are the checks of /readyz (backends, Redis, keys).
	Ready map[string]httpserver.Check
	// Metrics is served on /metrics; the handler's metrics register on it.
	Metrics *metrics.Registry
	Log     *slog.Logger
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// SecureCookies marks the refresh cookie Secure (behind TLS).
	SecureCookies bool
	// LoginLimiter bounds POST /api/auth attempts; nil: no limit.
	LoginLimiter LoginLimiter
	// TrustedProxies may set X-Forwarded-For (see ClientAddr).
	TrustedProxies TrustedProxies
	// Admission bounds the API requests in flight but logins and writes;
	// nil: no bound. LoginAdmission bounds POST /api/auth, WriteAdmission
	// the money-moving routes (sendCoin, buy); nil: no bound of their own
	// (writes then share Admission).
	Admission      Admitter
	LoginAdmission Admitter
	WriteAdmission Admitter
}

// Handler is the gateway's root HTTP handler.
type Handler struct {
	cfg  Config
	log  *slog.Logger
	mux  *runtime.ServeMux
	root http.Handler

	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	replayCalls *prometheus.CounterVec
}

// New builds the handler and registers its metrics on cfg.Metrics.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, log: cfg.Log}
	h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests answered, by route pattern and status code.",
	}, []string{"route", "code"})
	h.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "HTTP request latency by route pattern.", Buckets: metrics.LatencyBuckets,
	}, []string{"route"})
	h.replayCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_idempotency_cache_total", Help: "Idempotency replay cache lookups and stores, by result (hit, miss, stored, error).",
	}, []string{"result"})
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{h.requests, h.duration, h.replayCalls} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
	}

	h.mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, NewMarshaler()),
		runtime.WithErrorHandler(h.handleError),
		runtime.WithRoutingErrorHandler(h.handleRoutingError),
		// Nothing from the request headers goes into the metadata but what
		// the annotator puts there, and no metadata goes out as headers but
		// the refresh cookie (set by applySession).
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMetadata(annotate),
		runtime.WithForwardResponseOption(h.forwardSession),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithMiddlewares(h.routeLabel, h.admit, h.limitLogins, h.authenticate, h.checkQuery, h.idempotent),
	)
	if err := shopv1.RegisterShopServiceHandlerServer(ctx, h.mux, cfg.Shop); err != nil {
		return nil, err
	}
	h.root = h.observe(h.recoverPanics(h.limitBody(http.HandlerFunc(h.route))))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

var adminPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	if adminPaths[r.URL.Path] {
		setRoute(r.Context(), r.URL.Path)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		switch r.URL.Path {
		case "/healthz":
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		case "/readyz":
			h.readyz(w, r)
		case "/metrics":
			if h.cfg.Metrics == nil {
				writeError(w, http.StatusNotFound, "not found")
				return
			}
			h.cfg.Metrics.Handler().ServeHTTP(w, r)
		}
		return
	}
	h.mux.ServeHTTP(w, r)
}

// annotate passes the request facts Shop needs as incoming metadata.
func annotate(_ context.Context, r *http.Request) metadata.MD {
	md := metadata.MD{}
	if ua := r.UserAgent(); ua != "" {
		md.Set(app.MDUserAgent, cleanText(ua, 256))
	}
	if c, err := r.Cookie(refreshCookie); err == nil && c.Value != "" {
		md.Set(app.MDRefreshToken, c.Value)
	}
	return md
}

// cleanText makes s valid UTF-8 of at most max bytes (it goes into a proto
// string field).
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}

// routePattern is the route of r as its pattern, such as /api/buy/{item}.
func routePattern(r *http.Request) string {
	p, ok := runtime.HTTPPattern(r.Context())
	if !ok {
		return ""
	}
	return strings.ReplaceAll(p.String(), "=*}", "}")
}

// routeLabel records the matched pattern for the metrics.
func (h *Handler) routeLabel(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		setRoute(r.Context(), routePattern(r))
		next(w, r, params)
	}
}
