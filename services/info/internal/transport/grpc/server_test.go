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

	"github.com/merchshop/merchshop/services/info/internal/app"
)

func TestErrorMapping(t *testing.T) {
	s := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cases := []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{fmt.Errorf("%w: coins: %w", app.ErrAccountNotFound, app.ErrNotFound), codes.NotFound, "account not found"},
		{fmt.Errorf("%w: dial tcp: refused", app.ErrUnavailable), codes.Unavailable, "info is temporarily unavailable"},
		{app.ErrInvalidLimit, codes.InvalidArgument, "limit must be between 1 and 100"},
		{app.ErrInvalidCursor, codes.InvalidArgument, "invalid cursor"},
		{app.ErrInvalidUserID, codes.InvalidArgument, "user id must be a uuid"},
		{errors.New("boom"), codes.Internal, "internal error"},
	}
	for _, c := range cases {
		st, _ := status.FromError(s.toStatus(context.Background(), "GetInfo", c.err))
		if st.Code() != c.code || st.Message() != c.msg {
			t.Errorf("%v -> %v %q, want %v %q", c.err, st.Code(), st.Message(), c.code, c.msg)
		}
	}
}
