// Package grpc serves coinsv1.CoinsService: it hands requests to the use
// cases and maps their errors to status codes, in one place (status).
package grpc

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"

	"github.com/merchshop/merchshop/services/coins/internal/app"
)

// Coins is the use cases the server calls (implemented by *app.Service).
// The rules, input validation included, live there.
type Coins interface {
	OpenAccount(ctx context.Context, userID, username string) (app.OpenResult, error)
	Transfer(ctx context.Context, cmd app.TransferCmd) (app.TxResult, error)
	Charge(ctx context.Context, cmd app.ChargeCmd) (app.TxResult, error)
	Credit(ctx context.Context, cmd app.ChargeCmd) (app.TxResult, error)
	Overview(ctx context.Context, userID string) (app.Overview, error)
}

// Server implements coinsv1.CoinsServiceServer.
type Server struct {
	coinsv1.UnimplementedCoinsServiceServer
	coins Coins
	log   *slog.Logger
}

// New returns the server over the use cases.
func New(coins Coins, log *slog.Logger) *Server {
	return &Server{coins: coins, log: log}
}

// OpenAccount implements coinsv1.CoinsServiceServer.
func (s *Server) OpenAccount(ctx context.Context, req *coinsv1.OpenAccountRequest) (*coinsv1.OpenAccountResponse, error) {
	res, err := s.coins.OpenAccount(ctx, req.GetUserId(), req.GetUsername())
	if err != nil {
		return nil, s.status(ctx, "OpenAccount", err)
	}
	return &coinsv1.OpenAccountResponse{Balance: res.Balance, Created: res.Created}, nil
}

// Transfer implements coinsv1.CoinsServiceServer.
func (s *Server) Transfer(ctx context.Context, req *coinsv1.TransferRequest) (*coinsv1.TransactionResponse, error) {
	res, err := s.coins.Transfer(ctx, app.TransferCmd{
		FromUserID:     req.GetFromUserId(),
		ToUsername:     req.GetToUsername(),
		Amount:         req.GetAmount(),
		IdempotencyKey: req.GetIdempotencyKey(),
	})
	if err != nil {
		return nil, s.status(ctx, "Transfer", err)
	}
	return txResponse(res), nil
}

// Charge implements coinsv1.CoinsServiceServer.
func (s *Server) Charge(ctx context.Context, req *coinsv1.ChargeRequest) (*coinsv1.TransactionResponse, error) {
	res, err := s.coins.Charge(ctx, app.ChargeCmd{
		UserID: req.GetUserId(), Amount: req.GetAmount(), IdempotencyKey: req.GetIdempotencyKey(), Reason: req.GetReason(),
	})
	if err != nil {
		return nil, s.status(ctx, "Charge", err)
	}
	return txResponse(res), nil
}

// Credit implements coinsv1.CoinsServiceServer.
func (s *Server) Credit(ctx context.Context, req *coinsv1.CreditRequest) (*coinsv1.TransactionResponse, error) {
	res, err := s.coins.Credit(ctx, app.ChargeCmd{
		UserID: req.GetUserId(), Amount: req.GetAmount(), IdempotencyKey: req.GetIdempotencyKey(), Reason: req.GetReason(),
	})
	if err != nil {
		return nil, s.status(ctx, "Credit", err)
	}
	return txResponse(res), nil
}

// GetOverview implements coinsv1.CoinsServiceServer.
func (s *Server) GetOverview(ctx context.Context, req *coinsv1.GetOverviewRequest) (*coinsv1.GetOverviewResponse, error) {
	o, err := s.coins.Overview(ctx, req.GetUserId())
	if err != nil {
		return nil, s.status(ctx, "GetOverview", err)
	}
	return &coinsv1.GetOverviewResponse{Balance: o.Balance, Received: counterparts(o.Received), Sent: counterparts(o.Sent)}, nil
}

func txResponse(r app.TxResult) *coinsv1.TransactionResponse {
	return &coinsv1.TransactionResponse{TransactionId: r.TransactionID, Replayed: r.Replayed}
}

func counterparts(in []app.Counterpart) []*coinsv1.CounterpartTotal {
	out := make([]*coinsv1.CounterpartTotal, 0, len(in))
	for _, c := range in {
		out = append(out, &coinsv1.CounterpartTotal{Username: c.Username, Amount: c.Amount})
	}
	return out
}

// codeOf maps a domain error kind to its status code.
var codeOf = map[app.Kind]codes.Code{
	app.KindInvalid:            codes.InvalidArgument,
	app.KindNotFound:           codes.NotFound,
	app.KindFailedPrecondition: codes.FailedPrecondition,
	app.KindConflict:           codes.AlreadyExists,
	// Contention outlasted the bounded retries: Aborted says "retry the
	// whole request" (with the same idempotency key it cannot pay twice).
	// The gateway answers 500, since it is not the client's fault.
	app.KindBusy: codes.Aborted,
	// Nothing was written (the view cache was out of reach): retry later.
	app.KindUnavailable: codes.Unavailable,
}

// status turns a use-case error into a gRPC status: domain errors keep
// their message (shown to clients verbatim), anything else is logged and
// becomes Internal "internal error".
func (s *Server) status(ctx context.Context, method string, err error) error {
	var de *app.Error
	if errors.As(err, &de) {
		switch de.Kind {
		case app.KindBusy:
			s.log.WarnContext(ctx, "retries exhausted", "method", method, "error", err)
		case app.KindUnavailable:
			s.log.WarnContext(ctx, "refused, a dependency is unavailable", "method", method, "error", err)
		}
		if code, ok := codeOf[de.Kind]; ok {
			return status.Error(code, de.Msg)
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	s.log.ErrorContext(ctx, "request failed", "method", method, "error", err)
	return status.Error(codes.Internal, "internal error")
}
