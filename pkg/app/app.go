// Package app runs a service's components until SIGINT or SIGTERM, then
// shuts them down together.
package app

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"
)

// Component runs until its context ends (returning nil) or it fails.
type Component func(ctx context.Context) error

// SignalContext returns a context cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Run runs every component; the first failure, or ctx ending, stops all.
func Run(ctx context.Context, log *slog.Logger, components ...Component) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range components {
		g.Go(func() error { return c(gctx) })
	}
	err := g.Wait()
	if err != nil {
		log.Error("stopped with error", "error", err)
		return err
	}
	log.Info("stopped")
	return nil
}
