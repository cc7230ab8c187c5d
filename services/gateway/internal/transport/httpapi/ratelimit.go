package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/merchshop/merchshop/pkg/username"
)

// LoginLimiter bounds login attempts per username and per client address
// (brute force). Reserve takes one attempt before the credentials are
// checked; done tells it the outcome (failed: wrong credentials).
type LoginLimiter interface {
	Reserve(ctx context.Context, username, addr string) (done func(failed bool), retryAfter time.Duration, ok bool)
}

// msgTooManyLogins is the answer of a refused login attempt.
const msgTooManyLogins = "too many login attempts, try again later"

// limitLogins applies the LoginLimiter to POST /api/auth: a refused
// attempt is answered 429 with Retry-After, without checking anything; an
// allowed one counts against the limits only when it is answered 401.
func (h *Handler) limitLogins(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if h.cfg.LoginLimiter == nil || r.Method != http.MethodPost || routePattern(r) != "/api/auth" {
			next(w, r, params)
			return
		}
		username := loginUsername(r)
		done, retry, ok := h.cfg.LoginLimiter.Reserve(r.Context(), username, ClientAddr(r, h.cfg.TrustedProxies))
		if !ok {
			w.Header().Set("Retry-After", retryAfterSeconds(retry))
			writeError(w, http.StatusTooManyRequests, msgTooManyLogins)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r, params)
		done(sw.status == http.StatusUnauthorized)
	}
}

// loginUsername reads the username of a login body (already read into
// memory by limitBody), leaving the body for the decoder. A body that is not
// a JSON object with a string username gives "" (the decoder refuses it).
func loginUsername(r *http.Request) string {
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	data, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	// A map, not a struct: encoding/json matches struct fields case-
	// insensitively, protojson does not, and the limiter must count the
	// name that reaches the auth service ("Username" does not).
	var body map[string]json.RawMessage
	if json.Unmarshal(data, &body) != nil {
		return ""
	}
	var name string
	if json.Unmarshal(body["username"], &name) != nil {
		return ""
	}
	// Count the user, not the spelling: the composed and decomposed forms
	// of a name are one user (and one bucket).
	if n, err := username.Normalize(name); err == nil {
		name = n
	}
	return name
}

// retryAfterSeconds renders d as whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	return strconv.FormatInt(max(s, 1), 10)
}
