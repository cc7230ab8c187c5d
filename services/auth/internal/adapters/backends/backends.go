// Package backends calls the user and coins services for the auth use
// cases and turns their gRPC statuses into the app's errors.
package backends

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	"github.com/merchshop/merchshop/services/auth/internal/app"
)

// Users implements app.Users with the user service.
type Users struct{ c userv1.UserServiceClient }

// NewUsers wraps a user service client.
func NewUsers(c userv1.UserServiceClient) *Users { return &Users{c: c} }

var _ app.Users = (*Users)(nil)

// CreateIfNotExists implements app.Users. The user service's verdicts on
// the input (InvalidArgument) and the password (Unauthenticated) reach the
// client with their messages.
func (u *Users) CreateIfNotExists(ctx context.Context, username, password string) (string, error) {
	resp, err := u.c.CreateIfNotExists(ctx, &userv1.CreateIfNotExistsRequest{Username: username, Password: password})
	if err != nil {
		st := status.Convert(err)
		switch st.Code() {
		case codes.InvalidArgument:
			return "", &app.InputError{Message: st.Message()}
		case codes.Unauthenticated:
			return "", &app.CredentialsError{Message: st.Message()}
		}
		return "", backendError("user", err)
	}
	return resp.GetUserId(), nil
}

// Accounts implements app.Accounts with the coins service.
type Accounts struct{ c coinsv1.CoinsServiceClient }

// NewAccounts wraps a coins service client.
func NewAccounts(c coinsv1.CoinsServiceClient) *Accounts { return &Accounts{c: c} }

var _ app.Accounts = (*Accounts)(nil)

// OpenAccount implements app.Accounts.
func (a *Accounts) OpenAccount(ctx context.Context, userID, username string) error {
	if _, err := a.c.OpenAccount(ctx, &coinsv1.OpenAccountRequest{UserId: userID, Username: username}); err != nil {
		return backendError("coins", err)
	}
	return nil
}

// backendError wraps a failed call, marking the failures that may pass.
func backendError(backend string, err error) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return fmt.Errorf("%s service: %w: %w", backend, app.ErrUnavailable, err)
	}
	return fmt.Errorf("%s service: %w", backend, err)
}
