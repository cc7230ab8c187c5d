package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/merchshop/merchshop/pkg/identity"
	"github.com/merchshop/merchshop/services/gateway/internal/app"
)

// ReplayStore keeps the final answers of requests made with a client
// idempotency key. Errors mean the store is unusable: the request goes on
// without it (the backends' idempotency keys keep it correct).
type ReplayStore interface {
	Get(ctx context.Context, key string) (status int, body []byte, found bool, err error)
	Put(ctx context.Context, key string, status int, body []byte) error
}

// MaxIdempotencyKeyLen bounds a client's Idempotency-Key.
const MaxIdempotencyKeyLen = 200

// maxReplayBody bounds what the replay cache stores.
const maxReplayBody = 16 << 10

// idempotentRoutes are the money-moving routes and the namespace of their
// keys (GET and POST /api/buy/{item} are one operation).
var idempotentRoutes = map[string]string{
	"POST /api/sendCoin":         "sendCoin",
	"GET /api/buy/{item}":        "buy",
	"POST /api/buy/{item}":       "buy",
	"POST /api/coins/send":       "legacySend",
	"POST /api/merch/buy/{name}": "legacyBuy",
}

// clientKey returns the request's Idempotency-Key (or X-Idempotency-Key).
func clientKey(r *http.Request) (string, string) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		k = r.Header.Get("X-Idempotency-Key")
	}
	if len(k) > MaxIdempotencyKeyLen {
		return "", "idempotency key must be at most 200 characters"
	}
	return k, ""
}

// backendKey is the key passed to the backends: scoped to the route and the
// user (backend keys are unique system-wide), hashed when long or unusual.
func backendKey(ns, userID, key string) string {
	plain := len(key) <= 64
	for i := 0; plain && i < len(key); i++ {
		plain = key[i] > ' ' && key[i] < 0x7f
	}
	if !plain {
		sum := sha256.Sum256([]byte(key))
		key = "sha256-" + hex.EncodeToString(sum[:])
	}
	return "http:" + ns + ":" + userID + ":" + key
}

// idempotent gives every money-moving request a backend idempotency key
// and, for requests with a client key, answers a retry from the replay cache
// with the first final answer.
func (h *Handler) idempotent(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		ns, ok := idempotentRoutes[r.Method+" "+routePattern(r)]
		if !ok {
			next(w, r, params)
			return
		}
		caller, _ := identity.FromContext(r.Context())
		key, problem := clientKey(r)
		if problem != "" {
			writeError(w, http.StatusBadRequest, problem)
			return
		}
		if key == "" {
			// No client key: a fresh one still keeps retries inside the
			// system (gRPC retries of UNAVAILABLE) from paying twice.
			ctx := app.WithIdempotencyKey(r.Context(), "gw:"+uuid.NewString())
			next(w, r.WithContext(ctx), params)
			return
		}
		ctx := app.WithIdempotencyKey(r.Context(), backendKey(ns, caller.UserID, key))
		r = r.WithContext(ctx)
		if h.cfg.Replay == nil {
			next(w, r, params)
			return
		}
		cacheKey := "idem:" + caller.UserID + ":" + ns + ":" + key
		code, body, found, err := h.cfg.Replay.Get(ctx, cacheKey)
		switch {
		case err != nil:
			h.replayCalls.WithLabelValues("error").Inc()
			h.log.Debug("idempotency cache unavailable", "error", err)
		case found:
			h.replayCalls.WithLabelValues("hit").Inc()
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(code)
			_, _ = w.Write(body)
			return
		default:
			h.replayCalls.WithLabelValues("miss").Inc()
		}
		rec := &recorder{ResponseWriter: w}
		next(rec, r, params)
		if !rec.final() || err != nil {
			return
		}
		if err := h.cfg.Replay.Put(context.WithoutCancel(ctx), cacheKey, rec.code(), rec.body.Bytes()); err != nil {
			h.replayCalls.WithLabelValues("error").Inc()
			h.log.Debug("idempotency cache unavailable", "error", err)
			return
		}
		h.replayCalls.WithLabelValues("stored").Inc()
	}
}

// recorder passes a response through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	overflow bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(b) > maxReplayBody {
		r.overflow = true
	} else {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// final reports whether the answer is the outcome of the operation (success
// or a refusal that a retry would get again), not a transient failure.
func (r *recorder) final() bool {
	if r.overflow {
		return false
	}
	switch c := r.code(); c {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	default:
		return c >= 400 && c < 500
	}
}
