// Package grpcclients adapts the coins and user services' gRPC clients to
// the interfaces the merch use cases declare, turning status codes into the
// app's errors.
package grpcclients

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	"github.com/merchshop/merchshop/services/merch/internal/app"
)

// Coins implements app.Coins.
type Coins struct{ c coinsv1.CoinsServiceClient }

// NewCoins wraps a coins client.
func NewCoins(c coinsv1.CoinsServiceClient) *Coins { return &Coins{c: c} }

var _ app.Coins = (*Coins)(nil)

// Charge implements app.Coins.
func (c *Coins) Charge(ctx context.Context, userID string, amount int64, key, reason string) error {
	_, err := c.c.Charge(ctx, &coinsv1.ChargeRequest{UserId: userID, Amount: amount, IdempotencyKey: key, Reason: reason})
	return coinsError("charge", err)
}

// Credit implements app.Coins.
func (c *Coins) Credit(ctx context.Context, userID string, amount int64, key, reason string) error {
	_, err := c.c.Credit(ctx, &coinsv1.CreditRequest{UserId: userID, Amount: amount, IdempotencyKey: key, Reason: reason})
	return coinsError("credit", err)
}

func coinsError(op string, err error) error {
	if err == nil {
		return nil
	}
	switch status.Code(err) {
	case codes.FailedPrecondition:
		return fmt.Errorf("coins %s: %w: %w", op, app.ErrInsufficientFunds, err)
	case codes.NotFound:
		return fmt.Errorf("coins %s: %w: %w", op, app.ErrAccountNotFound, err)
	}
	return classify("coins "+op, err)
}

// Users implements app.Users.
type Users struct{ c userv1.UserServiceClient }

// NewUsers wraps a user client.
func NewUsers(c userv1.UserServiceClient) *Users { return &Users{c: c} }

var _ app.Users = (*Users)(nil)

// GrantItem implements app.Users.
func (u *Users) GrantItem(ctx context.Context, userID, item, orderID string) error {
	_, err := u.c.GrantItem(ctx, &userv1.GrantItemRequest{UserId: userID, Item: item, OrderId: orderID})
	if err == nil {
		return nil
	}
	return classify("user grant", err)
}

// classify splits failures into those that may succeed when repeated with
// the same key (the call may or may not have taken effect) and refusals.
func classify(op string, err error) error {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition,
		codes.OutOfRange, codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented:
		return fmt.Errorf("%s: %w: %w", op, app.ErrRejected, err)
	default:
		// Unavailable, DeadlineExceeded, Canceled, Aborted, ResourceExhausted,
		// Internal, Unknown, DataLoss: the outcome is unknown.
		return fmt.Errorf("%s: %w: %w", op, app.ErrTransient, err)
	}
}
