package grpcclients

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/merchshop/merchshop/services/merch/internal/app"
)

func TestCoinsErrors(t *testing.T) {
	cases := []struct {
		code codes.Code
		want error
	}{
		{codes.FailedPrecondition, app.ErrInsufficientFunds},
		{codes.NotFound, app.ErrAccountNotFound},
		{codes.Unavailable, app.ErrTransient},
		{codes.DeadlineExceeded, app.ErrTransient},
		{codes.Internal, app.ErrTransient},
		{codes.InvalidArgument, app.ErrRejected},
		{codes.AlreadyExists, app.ErrRejected},
	}
	for _, c := range cases {
		if err := coinsError("charge", status.Error(c.code, "x")); !errors.Is(err, c.want) {
			t.Errorf("%v -> %v, want %v", c.code, err, c.want)
		}
	}
	if coinsError("charge", nil) != nil {
		t.Error("nil error mapped to an error")
	}
}

func TestGrantErrors(t *testing.T) {
	for code, want := range map[codes.Code]error{
		codes.NotFound:         app.ErrRejected,
		codes.InvalidArgument:  app.ErrRejected,
		codes.AlreadyExists:    app.ErrRejected,
		codes.Unavailable:      app.ErrTransient,
		codes.DeadlineExceeded: app.ErrTransient,
		codes.Canceled:         app.ErrTransient,
	} {
		if err := classify("grant", status.Error(code, "x")); !errors.Is(err, want) {
			t.Errorf("%v -> %v, want %v", code, err, want)
		}
	}
}
