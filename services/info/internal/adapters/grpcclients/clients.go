// Package grpcclients adapts the coins and user services' gRPC clients to
// the interfaces the info use cases declare.
package grpcclients

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	"github.com/merchshop/merchshop/services/info/internal/app"
)

// Coins implements app.Coins.
type Coins struct{ c coinsv1.CoinsServiceClient }

// NewCoins wraps a coins client.
func NewCoins(c coinsv1.CoinsServiceClient) *Coins { return &Coins{c: c} }

var _ app.Coins = (*Coins)(nil)

// GetOverview implements app.Coins.
func (c *Coins) GetOverview(ctx context.Context, userID string) (balance int64, received, sent []app.CounterpartTotal, err error) {
	resp, err := c.c.GetOverview(ctx, &coinsv1.GetOverviewRequest{UserId: userID})
	if err != nil {
		return 0, nil, nil, wrap("coins overview", err)
	}
	conv := func(in []*coinsv1.CounterpartTotal) []app.CounterpartTotal {
		out := make([]app.CounterpartTotal, 0, len(in))
		for _, t := range in {
			out = append(out, app.CounterpartTotal{Username: t.GetUsername(), Amount: t.GetAmount()})
		}
		return out
	}
	return resp.GetBalance(), conv(resp.GetReceived()), conv(resp.GetSent()), nil
}

// Users implements app.Users.
type Users struct{ c userv1.UserServiceClient }

// NewUsers wraps a user client.
func NewUsers(c userv1.UserServiceClient) *Users { return &Users{c: c} }

var _ app.Users = (*Users)(nil)

// GetInventory implements app.Users.
func (u *Users) GetInventory(ctx context.Context, userID string) ([]app.InventoryItem, error) {
	resp, err := u.c.GetInventory(ctx, &userv1.GetInventoryRequest{UserId: userID})
	if err != nil {
		return nil, wrap("user inventory", err)
	}
	out := make([]app.InventoryItem, 0, len(resp.GetItems()))
	for _, it := range resp.GetItems() {
		out = append(out, app.InventoryItem{Item: it.GetItem(), Quantity: it.GetQuantity()})
	}
	return out, nil
}

func wrap(op string, err error) error {
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("%s: %w: %w", op, app.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
