package grpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"

	pgstore "github.com/merchshop/merchshop/services/coins/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/coins/internal/app"
	"github.com/merchshop/merchshop/services/coins/internal/testdb"
)

// failing answers every call with err (the error mapping only).
type failing struct{ err error }

func (f failing) OpenAccount(context.Context, string, string) (app.OpenResult, error) {
	return app.OpenResult{}, f.err
}
func (f failing) Transfer(context.Context, app.TransferCmd) (app.TxResult, error) {
	return app.TxResult{}, f.err
}
func (f failing) Charge(context.Context, app.ChargeCmd) (app.TxResult, error) {
	return app.TxResult{}, f.err
}
func (f failing) Credit(context.Context, app.ChargeCmd) (app.TxResult, error) {
	return app.TxResult{}, f.err
}
func (f failing) Overview(context.Context, string) (app.Overview, error) {
	return app.Overview{}, f.err
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{app.ErrAmountTooSmall, codes.InvalidArgument, "amount must be at least 1"},
		{app.ErrAmountTooLarge, codes.InvalidArgument, "amount is too large"},
		{app.ErrSelfTransfer, codes.InvalidArgument, "cannot send coins to yourself"},
		{fmt.Errorf("transfer: %w", app.ErrUnknownRecipient), codes.NotFound, "unknown recipient"},
		{app.ErrAccountNotFound, codes.NotFound, "account not found"},
		{fmt.Errorf("transfer: %w: pg detail", app.ErrInsufficientFunds), codes.FailedPrecondition, "insufficient funds"},
		{app.ErrKeyReused, codes.AlreadyExists, "idempotency key was already used for a different request"},
		{fmt.Errorf("%w: %w", app.ErrBusy, errors.New("40001")), codes.Aborted, "please retry"},
		{errors.New(`ERROR: relation "accounts" does not exist (SQLSTATE 42P01)`), codes.Internal, "internal error"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "deadline exceeded"},
		{context.Canceled, codes.Canceled, "request cancelled"},
	}
	ctx := context.Background()
	for _, c := range cases {
		s := New(failing{c.err}, slog.New(slog.DiscardHandler))
		calls := map[string]error{}
		_, calls["OpenAccount"] = s.OpenAccount(ctx, &coinsv1.OpenAccountRequest{})
		_, calls["Transfer"] = s.Transfer(ctx, &coinsv1.TransferRequest{})
		_, calls["Charge"] = s.Charge(ctx, &coinsv1.ChargeRequest{})
		_, calls["Credit"] = s.Credit(ctx, &coinsv1.CreditRequest{})
		_, calls["GetOverview"] = s.GetOverview(ctx, &coinsv1.GetOverviewRequest{})
		for method, err := range calls {
			st, _ := status.FromError(err)
			if st.Code() != c.code || st.Message() != c.msg {
				t.Errorf("%s(%v) = %v %q, want %v %q", method, c.err, st.Code(), st.Message(), c.code, c.msg)
			}
		}
	}
}

// TestServerOverPostgres drives the real server over a loopback gRPC
// connection with the real store.
func TestServerOverPostgres(t *testing.T) {
	pool := testdb.Pool(t, 8)
	srv := ggrpc.NewServer()
	coinsv1.RegisterCoinsServiceServer(srv, New(app.New(pgstore.New(pool, 0), nil), slog.New(slog.DiscardHandler)))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := ggrpc.NewClient(lis.Addr().String(), ggrpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := coinsv1.NewCoinsServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	alice, bob := uuid.NewString(), uuid.NewString()
	for _, u := range []struct{ id, name string }{{alice, "alice"}, {bob, "bob"}} {
		res, err := c.OpenAccount(ctx, &coinsv1.OpenAccountRequest{UserId: u.id, Username: u.name})
		if err != nil || !res.GetCreated() || res.GetBalance() != 1000 {
			t.Fatalf("open %s: %v %v", u.name, res, err)
		}
	}
	res, err := c.OpenAccount(ctx, &coinsv1.OpenAccountRequest{UserId: alice, Username: "alice"})
	if err != nil || res.GetCreated() || res.GetBalance() != 1000 {
		t.Fatalf("reopen: %v %v", res, err)
	}

	expect := func(what string, err error, code codes.Code, msg string) {
		t.Helper()
		st, _ := status.FromError(err)
		if st.Code() != code || st.Message() != msg {
			t.Errorf("%s: %v %q, want %v %q", what, st.Code(), st.Message(), code, msg)
		}
	}
	tr := func(amount int64, to, key string) (*coinsv1.TransactionResponse, error) {
		return c.Transfer(ctx, &coinsv1.TransferRequest{FromUserId: alice, ToUsername: to, Amount: amount, IdempotencyKey: key})
	}
	_, err = tr(0, "bob", "k")
	expect("zero", err, codes.InvalidArgument, "amount must be at least 1")
	_, err = tr(1_000_000_001, "bob", "k")
	expect("huge", err, codes.InvalidArgument, "amount is too large")
	_, err = tr(1, "nobody", "k")
	expect("unknown", err, codes.NotFound, "unknown recipient")
	_, err = tr(1, "alice", "k")
	expect("self", err, codes.InvalidArgument, "cannot send coins to yourself")
	_, err = tr(1001, "bob", "k-too-much")
	expect("insufficient", err, codes.FailedPrecondition, "insufficient funds")
	// The refusal is the key's outcome: the same request answers it again,
	// even once the balance would allow it (alice is topped up to 1005).
	if _, err := c.Credit(ctx, &coinsv1.CreditRequest{UserId: alice, Amount: 5, IdempotencyKey: "topup:alice"}); err != nil {
		t.Fatal(err)
	}
	_, err = tr(1001, "bob", "k-too-much")
	expect("insufficient, replayed", err, codes.FailedPrecondition, "insufficient funds")
	_, err = tr(1000, "bob", "k-too-much")
	expect("refused key reused", err, codes.AlreadyExists, "idempotency key was already used for a different request")
	_, err = tr(1, "bob", "")
	expect("no key", err, codes.InvalidArgument, "idempotency key is required")

	first, err := tr(100, "bob", "k")
	if err != nil || first.GetReplayed() || first.GetTransactionId() == "" {
		t.Fatalf("transfer: %v %v", first, err)
	}
	again, err := tr(100, "bob", "k")
	if err != nil || !again.GetReplayed() || again.GetTransactionId() != first.GetTransactionId() {
		t.Fatalf("replay: %v %v", again, err)
	}
	_, err = tr(101, "bob", "k")
	expect("reused key", err, codes.AlreadyExists, "idempotency key was already used for a different request")

	if _, err := c.Charge(ctx, &coinsv1.ChargeRequest{UserId: bob, Amount: 300, IdempotencyKey: "order:1", Reason: "hoody"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Credit(ctx, &coinsv1.CreditRequest{UserId: bob, Amount: 1, IdempotencyKey: "c:1"}); err != nil {
		t.Fatal(err)
	}
	o, err := c.GetOverview(ctx, &coinsv1.GetOverviewRequest{UserId: bob})
	if err != nil || o.GetBalance() != 1000+100-300+1 || len(o.GetSent()) != 0 || len(o.GetReceived()) != 1 ||
		o.GetReceived()[0].GetUsername() != "alice" || o.GetReceived()[0].GetAmount() != 100 {
		t.Errorf("bob's overview: %v %v", o, err)
	}
	_, err = c.GetOverview(ctx, &coinsv1.GetOverviewRequest{UserId: uuid.NewString()})
	expect("overview of nobody", err, codes.NotFound, "account not found")
	_, err = c.GetOverview(ctx, &coinsv1.GetOverviewRequest{UserId: "not-a-uuid"})
	expect("overview, bad id", err, codes.InvalidArgument, "invalid user id")
}
