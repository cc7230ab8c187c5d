package httpapi

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/merchshop/merchshop/services/gateway/internal/admission"
)

// Admitter bounds the requests in flight (admission.Limiter): Acquire
// admits a request or refuses it (no slot in time, or ctx ended while
// waiting); an admitted one calls release once it is answered.
type Admitter interface {
	Acquire(ctx context.Context) (release admission.Release, err error)
}

// msgOverloaded is the answer of a request refused by admission.
const msgOverloaded = "service overloaded, retry later"

// admit runs every API route under an admission bound: POST /api/auth
// under cfg.LoginAdmission (a login may be a first one, a bcrypt hash,
// ~60 ms of a core: their bound is smaller and their own), the
// money-moving routes under cfg.WriteAdmission (a write costs ten times a
// read, 3.5-6 ms of CPU against 0.4 ms, docs/benchmarks.md: with one pool,
// reads queued behind writes and writes took the CPU the reads needed), the
// other routes under cfg.Admission. A refused request is answered 503 with Retry-After
// at once, before anything else is done for it (no token check, no Redis,
// no backend). /healthz, /readyz and /metrics are served outside the mux,
// so they are never refused.
func (h *Handler) admit(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		lim := h.cfg.Admission
		route := routePattern(r)
		switch _, write := idempotentRoutes[r.Method+" "+route]; {
		case r.Method == http.MethodPost && route == "/api/auth":
			lim = h.cfg.LoginAdmission
		case write && h.cfg.WriteAdmission != nil:
			lim = h.cfg.WriteAdmission
		}
		if lim == nil {
			next(w, r, params)
			return
		}
		release, err := lim.Acquire(r.Context())
		if err != nil {
			if r.Context().Err() != nil {
				// The client went away while waiting; nobody reads this.
				w.WriteHeader(statusClientClosed)
				return
			}
			writeError(w, http.StatusServiceUnavailable, msgOverloaded)
			return
		}
		// The latency of a request whose client went away says nothing
		// about the backends; a panic still gives the slot back.
		defer func() { release(r.Context().Err() == nil) }()
		next(w, r, params)
	}
}
