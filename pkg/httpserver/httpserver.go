// Package httpserver runs HTTP servers with bounded timeouts and graceful
// shutdown, and builds the admin endpoints (/metrics, /healthz, /readyz,
// optional pprof) every service exposes.
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/merchshop/merchshop/pkg/metrics"
)

// Check reports whether one dependency is usable.
type Check func(ctx context.Context) error

// AdminOptions configures the admin mux.
type AdminOptions struct {
	Registry *metrics.Registry
	// Ready maps a dependency name to its check; /readyz runs them all.
	Ready map[string]Check
	// Pprof mounts net/http/pprof under /debug/pprof/.
	Pprof bool
}

// AdminMux returns the admin handlers on a new mux.
func AdminMux(opts AdminOptions) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", opts.Registry.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failed := map[string]string{}
		for name, check := range opts.Ready {
			if err := check(ctx); err != nil {
				failed[name] = err.Error()
			}
		}
		if len(failed) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if opts.Pprof {
		MountPprof(mux)
	}
	return mux
}

// MountPprof mounts net/http/pprof under /debug/pprof/ on mux. Profiles
// are for operators: mount them only on a loopback or cluster-internal
// listener, never on a public one.
func MountPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// New returns a server with timeouts that bound slow clients.
func New(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Run serves srv until ctx ends, then shuts down within grace.
func Run(ctx context.Context, log *slog.Logger, srv *http.Server, grace time.Duration) error {
	lis, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", srv.Addr, err)
	}
	log.Info("http listening", "addr", lis.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve: %w", err)
	}
	return nil
}
