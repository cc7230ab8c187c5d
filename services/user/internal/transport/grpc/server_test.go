package grpc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	"github.com/merchshop/merchshop/services/user/internal/adapters/bcrypt"
	"github.com/merchshop/merchshop/services/user/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/user/internal/app"
	"github.com/merchshop/merchshop/services/user/internal/testdb"
	grpctransport "github.com/merchshop/merchshop/services/user/internal/transport/grpc"
)

// TestStatusCodes checks the error contract end to end through the
// handlers: codes and the exact messages clients see.
func TestStatusCodes(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := bcrypt.New(bcrypt.Config{Cost: 4})
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.New(testdb.Pool(t))
	srv := grpctransport.New(app.New(store, h, nil, log), log)

	reg, err := srv.CreateIfNotExists(ctx, &userv1.CreateIfNotExistsRequest{Username: "erin", Password: "pw"})
	if err != nil || !reg.GetCreated() {
		t.Fatalf("register: %v %v", reg, err)
	}
	uid := reg.GetUserId()

	check := func(name string, err error, code codes.Code, msg string) {
		t.Helper()
		st, _ := status.FromError(err)
		if st.Code() != code || st.Message() != msg {
			t.Errorf("%s: %v %q, want %v %q", name, st.Code(), st.Message(), code, msg)
		}
	}
	_, err = srv.CreateIfNotExists(ctx, &userv1.CreateIfNotExistsRequest{Username: "", Password: "pw"})
	check("empty username", err, codes.InvalidArgument, "username is required")
	_, err = srv.CreateIfNotExists(ctx, &userv1.CreateIfNotExistsRequest{Username: "erin", Password: ""})
	check("empty password", err, codes.InvalidArgument, "password must be 1 to 72 printable characters")
	_, err = srv.CreateIfNotExists(ctx, &userv1.CreateIfNotExistsRequest{Username: "erin", Password: "nope"})
	check("wrong password", err, codes.Unauthenticated, "invalid username or password")
	busy := grpctransport.New(app.New(store, busyHasher{}, nil, log), log)
	_, err = busy.CreateIfNotExists(ctx, &userv1.CreateIfNotExistsRequest{Username: "erin", Password: "pw"})
	check("bcrypt pool full", err, codes.ResourceExhausted, "too many logins in progress, retry later")
	_, err = busy.CreateIfNotExists(ctx, &userv1.CreateIfNotExistsRequest{Username: "nobody", Password: "pw"})
	check("bcrypt pool full, new user", err, codes.ResourceExhausted, "too many logins in progress, retry later")
	_, err = srv.GrantItem(ctx, &userv1.GrantItemRequest{UserId: uid, Item: "cup", OrderId: "42"})
	check("bad order id", err, codes.InvalidArgument, "order id must be a uuid")
	_, err = srv.GrantItem(ctx, &userv1.GrantItemRequest{UserId: uid, Item: "", OrderId: uuid.NewString()})
	check("empty item", err, codes.InvalidArgument, "item must be 1 to 64 printable characters without spaces")
	_, err = srv.GrantItem(ctx, &userv1.GrantItemRequest{UserId: uuid.NewString(), Item: "cup", OrderId: uuid.NewString()})
	check("unknown user grant", err, codes.NotFound, "unknown user")

	order := uuid.NewString()
	for i, want := range []bool{true, false} {
		g, err := srv.GrantItem(ctx, &userv1.GrantItemRequest{UserId: uid, Item: "cup", OrderId: order})
		if err != nil || g.GetGranted() != want {
			t.Fatalf("grant %d: %v %v, want granted=%v", i, g, err, want)
		}
	}
	inv, err := srv.GetInventory(ctx, &userv1.GetInventoryRequest{UserId: uid})
	if err != nil || len(inv.GetItems()) != 1 || inv.GetItems()[0].GetItem() != "cup" || inv.GetItems()[0].GetQuantity() != 1 {
		t.Fatalf("inventory: %v %v", inv, err)
	}
}

// busyHasher is a bcrypt pool that is always full.
type busyHasher struct{}

func (busyHasher) Hash(context.Context, string) (string, error) {
	return "", fmt.Errorf("bcrypt: %w: 16 calls waiting", app.ErrBusy)
}

func (busyHasher) Matches(context.Context, string, string) (bool, error) {
	return false, fmt.Errorf("bcrypt: %w: 16 calls waiting", app.ErrBusy)
}
