package grpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/merchshop/merchshop/services/merch/internal/app"
)

func TestErrorMapping(t *testing.T) {
	s := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cases := []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{app.ErrUnknownItem, codes.NotFound, "unknown item"},
		{app.ErrInvalidKey, codes.InvalidArgument, "idempotency key must be 1 to 200 characters"},
		{app.ErrInvalidUserID, codes.InvalidArgument, "user id must be a uuid"},
		{app.ErrKeyReused, codes.AlreadyExists, "idempotency key was already used for a different request"},
		{fmt.Errorf("wrapped: %w", app.ErrInsufficientFunds), codes.FailedPrecondition, "insufficient funds"},
		{app.ErrAccountNotFound, codes.FailedPrecondition, "account not found"},
		{app.ErrRefunded, codes.FailedPrecondition, "purchase failed and was refunded"},
		{fmt.Errorf("%w: charge: %w: boom", app.ErrPending, app.ErrTransient), codes.Unavailable,
			"purchase is being processed, retry with the same idempotency key"},
		{errors.New("pq: relation does not exist"), codes.Internal, "internal error"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "deadline exceeded"},
	}
	for _, c := range cases {
		st, _ := status.FromError(s.toStatus(context.Background(), "Buy", c.err))
		if st.Code() != c.code || st.Message() != c.msg {
			t.Errorf("%v -> %v %q, want %v %q", c.err, st.Code(), st.Message(), c.code, c.msg)
		}
	}
}
