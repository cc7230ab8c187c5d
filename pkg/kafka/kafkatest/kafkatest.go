// Package kafkatest has test helpers for code that runs Kafka consumers.
package kafkatest

import (
	"context"
	"testing"
	"time"
)

// Run starts run (a consumer's Run) in the background with a context
// derived from ctx. When the test ends, the context is cancelled and run
// must return nil within stopWithin: a service's shutdown waits for its
// consumers, so one that does not stop when asked hangs a deploy.
func Run(t testing.TB, ctx context.Context, stopWithin time.Duration, run func(context.Context) error) {
	t.Helper()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(rctx) }()
	t.Cleanup(func() {
		stop()
		timer := time.NewTimer(stopWithin)
		defer timer.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("consumer stopped with %v", err)
			}
		case <-timer.C:
			t.Errorf("consumer did not stop within %v of its context ending", stopWithin)
		}
	})
}
