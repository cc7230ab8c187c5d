package app

import (
	"context"
	"errors"
	"time"
)

// RecoveryConfig tunes the recovery loop.
type RecoveryConfig struct {
	// Interval between passes.
	Interval time.Duration
	// Age: a pending order untouched for this long is taken over.
	Age time.Duration
	// Batch bounds the orders claimed at once.
	Batch int
	// StepTimeout bounds driving one order.
	StepTimeout time.Duration
	// MaxRounds bounds the batches of one pass.
	MaxRounds int
}

func (c RecoveryConfig) withDefaults() RecoveryConfig {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.Age <= 0 {
		c.Age = 10 * time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 20
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = 10 * time.Second
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = 50
	}
	return c
}

// Recovery returns a component that drives pending orders to their end at
// start and then every interval: orders whose request died with the process,
// or whose backend was down.
func (s *Service) Recovery(cfg RecoveryConfig) func(ctx context.Context) error {
	cfg = cfg.withDefaults()
	return func(ctx context.Context) error {
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		for {
			if _, err := s.RecoverPending(ctx, cfg); err != nil && ctx.Err() == nil {
				s.log.Warn("recovery pass failed", "error", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}

// RecoverPending runs one pass: it claims pending orders older than cfg.Age
// in batches and drives each. Claiming marks an order touched, so one pass
// never claims an order twice. It returns how many orders reached an end
// (completed or failed).
func (s *Service) RecoverPending(ctx context.Context, cfg RecoveryConfig) (int, error) {
	cfg = cfg.withDefaults()
	ended := 0
	for range cfg.MaxRounds {
		orders, err := s.store.ClaimPending(ctx, cfg.Age, cfg.Batch)
		if err != nil {
			return ended, err
		}
		for _, o := range orders {
			if ctx.Err() != nil {
				return ended, ctx.Err()
			}
			octx, cancel := context.WithTimeout(ctx, cfg.StepTimeout)
			got, err := s.drive(octx, o)
			cancel()
			switch {
			case err == nil || got.Status == StatusFailed:
				ended++
				s.log.Info("recovered order", "order_id", o.ID, "status", got.Status, "failure", got.Failure)
			case errors.Is(err, ErrPending):
				s.log.Warn("order still pending", "order_id", o.ID, "error", err)
			default:
				s.log.Error("recover order", "order_id", o.ID, "error", err)
			}
		}
		if len(orders) < cfg.Batch {
			break
		}
	}
	return ended, nil
}
