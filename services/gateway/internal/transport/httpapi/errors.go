package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Messages of errors that are not the client's fault. Backend details are
// logged, never shown.
const (
	msgUnavailable = "service temporarily unavailable"
	msgInternal    = "internal error"
)

// retryAfterUnavailable is the Retry-After of every 503: overload and
// outages are expected to pass within seconds, and a client that retries
// sooner only adds to the load.
const retryAfterUnavailable = "1"

// statusClientClosed is recorded (never seen by anyone) when the client went
// away before the answer, so that it does not count as a server error.
const statusClientClosed = 499

type errorBody struct {
	Errors string `json:"errors"`
}

// writeError writes the one error shape of the API: {"errors":"<message>"}.
func writeError(w http.ResponseWriter, code int, msg string) {
	b, err := json.Marshal(errorBody{Errors: msg})
	if err != nil {
		b = []byte(`{"errors":"internal error"}`)
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	switch code {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="merchshop"`)
	case http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", retryAfterUnavailable)
		}
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// HTTPStatus maps a gRPC status to the HTTP status and the message the
// client sees. Messages of the codes that mean bad input are written by the
// backends for users and pass through; the others are replaced.
//
// The codes of a failure that passes (a backend down, overloaded or busy,
// a deadline, coins' Aborted "please retry" after its retries) are 503 with
// Retry-After: the request may be repeated (with its Idempotency-Key, for
// the money-moving routes). 500 is left for what a retry will not fix: a
// bug (Internal, Unknown, anything unexpected).
func HTTPStatus(st *status.Status) (int, string) {
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.AlreadyExists, codes.OutOfRange:
		return http.StatusBadRequest, orDefault(msg, "bad request")
	case codes.Unauthenticated:
		return http.StatusUnauthorized, orDefault(msg, "unauthorized")
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted, codes.Canceled:
		return http.StatusServiceUnavailable, msgUnavailable
	default:
		return http.StatusInternalServerError, msgInternal
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// handleError is the mux's error handler: every error of a route becomes
// {"errors"} with the status of HTTPStatus.
func (h *Handler) handleError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		msg := http.StatusText(hse.HTTPStatus)
		if hse.HTTPStatus == http.StatusBadRequest {
			msg = "malformed request path"
		}
		writeError(w, hse.HTTPStatus, lowerFirst(msg))
		return
	}
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		h.applySession(w, md.HeaderMD)
	}
	st := status.Convert(err)
	code, msg := HTTPStatus(st)
	if code >= http.StatusInternalServerError {
		method, _ := runtime.RPCMethod(ctx)
		if r.Context().Err() != nil {
			// The client is gone; nobody reads this answer.
			h.log.Debug("client went away", "method", method, "code", st.Code().String())
			w.WriteHeader(statusClientClosed)
			return
		}
		if code == http.StatusServiceUnavailable {
			// Overload and outages: counted by http_requests_total{code="503"};
			// a line per request would add to the overload.
			h.log.Debug("request failed, may be retried", "method", method, "path", r.URL.Path, "code", st.Code().String(), "error", st.Message())
		} else {
			h.log.Error("request failed", "method", method, "path", r.URL.Path, "code", st.Code().String(), "error", st.Message())
		}
	}
	writeError(w, code, msg)
}

// handleRoutingError keeps 404 and 405 for unknown routes and methods, in
// the {"errors"} shape.
func (h *Handler) handleRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, code int) {
	switch code {
	case http.StatusNotFound:
		writeError(w, code, "not found")
	case http.StatusMethodNotAllowed:
		writeError(w, code, "method not allowed")
	case http.StatusBadRequest:
		writeError(w, code, "bad request")
	default:
		writeError(w, http.StatusInternalServerError, msgInternal)
	}
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	if b[0] >= 'A' && b[0] <= 'Z' {
		b[0] += 'a' - 'A'
	}
	return string(b)
}
