package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/merchshop/merchshop/pkg/identity"
)

// routeHolder carries the matched route from inside the mux out to the
// metrics middleware.
type routeHolder struct{ route string }

type routeKey struct{}

// unmatchedRoute labels requests that matched no route (bounded cardinality).
const unmatchedRoute = "unmatched"

func setRoute(ctx context.Context, route string) {
	if h, ok := ctx.Value(routeKey{}).(*routeHolder); ok && route != "" {
		h.route = route
	}
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe counts requests and their latency by route pattern and code.
func (h *Handler) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rh := &routeHolder{route: unmatchedRoute}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), routeKey{}, rh)))
		code := sw.status
		if code == 0 {
			code = http.StatusOK
		}
		h.requests.WithLabelValues(rh.route, strconv.Itoa(code)).Inc()
		h.duration.WithLabelValues(rh.route).Observe(time.Since(start).Seconds())
	})
}

// recoverPanics turns a panic into a logged 500 instead of a dropped
// connection.
func (h *Handler) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				h.log.Error("panic serving request", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, msgInternal)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody reads the body up to the limit before routing: a larger body is
// answered 413, so no handler ever sees a truncated one.
func (h *Handler) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > h.cfg.MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
				return
			}
			writeError(w, http.StatusBadRequest, "could not read request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// publicRoutes need no token.
var publicRoutes = map[string]bool{
	"POST /api/auth":          true,
	"POST /api/auth/refresh":  true,
	"DELETE /api/auth/logout": true,
	"GET /api/merch":          true,
}

// bearerToken returns the token of `Authorization: Bearer <token>` (scheme
// case-insensitive), or a message saying what is wrong.
func bearerToken(r *http.Request) (string, string) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", "missing authorization header"
	}
	if len(vals) > 1 {
		return "", "more than one authorization header"
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", "authorization must be a bearer token"
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", "authorization must be a bearer token"
	}
	return tok, ""
}

// authenticate lets a request with a valid access token through with its
// caller in the context; every route but the public ones needs one.
func (h *Handler) authenticate(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if publicRoutes[r.Method+" "+routePattern(r)] {
			next(w, r, params)
			return
		}
		raw, problem := bearerToken(r)
		if problem != "" {
			writeError(w, http.StatusUnauthorized, problem)
			return
		}
		if !h.cfg.Verifier.Ready() {
			h.log.Warn("token verification keys not loaded yet; refusing a protected request")
			writeError(w, http.StatusServiceUnavailable, msgUnavailable)
			return
		}
		caller, err := h.cfg.Verifier.Verify(r.Context(), raw)
		if err != nil {
			h.log.Debug("token refused", "error", err)
			writeError(w, http.StatusUnauthorized, "invalid or expired token")
			return
		}
		next(w, r.WithContext(identity.WithCaller(r.Context(), caller)), params)
	}
}

// checkQuery validates the query of the routes that read one, so that bad
// values get our own message rather than the query parser's.
func (h *Handler) checkQuery(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if routePattern(r) == "/api/history" {
			q := r.URL.Query()
			for key, vals := range q {
				if len(vals) > 1 && (key == "limit" || key == "cursor") {
					writeError(w, http.StatusBadRequest, "query parameter "+key+" given more than once")
					return
				}
			}
			if v := q.Get("limit"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 100 {
					writeError(w, http.StatusBadRequest, "limit must be an integer between 1 and 100")
					return
				}
			}
		}
		next(w, r, params)
	}
}
