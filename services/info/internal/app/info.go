// Package app holds the info service's use cases: the caller's overview
// gathered from coins and user in parallel, and the itemised history read
// model fed from the transactions topic.
package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// Info is what GET /api/info shows.
type Info struct {
	Coins     int64
	Inventory []InventoryItem
	Received  []CounterpartTotal
	Sent      []CounterpartTotal
}

// Service runs the info use cases.
type Service struct {
	coins   Coins
	users   Users
	history HistoryReader
}

// New returns the service.
func New(coins Coins, users Users, history HistoryReader) *Service {
	return &Service{coins: coins, users: users, history: history}
}

// GetInfo fetches balance, grouped history and inventory in parallel; the
// first failure cancels the other calls.
func (s *Service) GetInfo(ctx context.Context, userID string) (Info, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return Info{}, ErrInvalidUserID
	}
	var info Info
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// One call, one snapshot: the balance matches the transfers listed.
		bal, received, sent, err := s.coins.GetOverview(gctx, userID)
		if err != nil {
			return fmt.Errorf("coins: %w", err)
		}
		info.Coins, info.Received, info.Sent = bal, received, sent
		return nil
	})
	g.Go(func() error {
		inv, err := s.users.GetInventory(gctx, userID)
		if err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
		info.Inventory = inv
		return nil
	})
	if err := g.Wait(); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Info{}, fmt.Errorf("%w: %w", ErrAccountNotFound, err)
		}
		return Info{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if info.Inventory == nil {
		info.Inventory = []InventoryItem{}
	}
	if info.Received == nil {
		info.Received = []CounterpartTotal{}
	}
	if info.Sent == nil {
		info.Sent = []CounterpartTotal{}
	}
	return info, nil
}
