// Package grpc is the merch service's gRPC transport: it calls the use
// cases and maps their errors to status codes, in one place.
package grpc

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	merchv1 "github.com/merchshop/merchshop/gen/merch/v1"
	"github.com/merchshop/merchshop/services/merch/internal/app"
)

// StatusCompleted is the status of a finished purchase in BuyResponse.
const StatusCompleted = "COMPLETED"

// Server implements merchv1.MerchServiceServer.
type Server struct {
	merchv1.UnimplementedMerchServiceServer
	svc *app.Service
	log *slog.Logger
}

// New returns the handlers for svc.
func New(svc *app.Service, log *slog.Logger) *Server { return &Server{svc: svc, log: log} }

// ListItems implements merchv1.MerchServiceServer.
func (s *Server) ListItems(ctx context.Context, _ *merchv1.ListItemsRequest) (*merchv1.ListItemsResponse, error) {
	items, err := s.svc.ListItems(ctx)
	if err != nil {
		return nil, s.toStatus(ctx, "ListItems", err)
	}
	resp := &merchv1.ListItemsResponse{Items: make([]*merchv1.Item, 0, len(items))}
	for _, it := range items {
		resp.Items = append(resp.Items, &merchv1.Item{Name: it.Name, Price: it.Price})
	}
	return resp, nil
}

// Buy implements merchv1.MerchServiceServer.
func (s *Server) Buy(ctx context.Context, req *merchv1.BuyRequest) (*merchv1.BuyResponse, error) {
	o, err := s.svc.Buy(ctx, req.GetUserId(), req.GetItem(), req.GetIdempotencyKey())
	if err != nil {
		return nil, s.toStatus(ctx, "Buy", err)
	}
	return &merchv1.BuyResponse{OrderId: o.ID, Status: StatusCompleted}, nil
}

// codes of the errors clients may see; their texts are the messages.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{app.ErrInvalidUserID, codes.InvalidArgument},
	{app.ErrInvalidKey, codes.InvalidArgument},
	{app.ErrUnknownItem, codes.NotFound},
	{app.ErrKeyReused, codes.AlreadyExists},
	{app.ErrInsufficientFunds, codes.FailedPrecondition},
	{app.ErrAccountNotFound, codes.FailedPrecondition},
	{app.ErrPaymentRefused, codes.FailedPrecondition},
	{app.ErrRefunded, codes.FailedPrecondition},
	{app.ErrOrderFailed, codes.FailedPrecondition},
	{app.ErrPending, codes.Unavailable},
}

func (s *Server) toStatus(ctx context.Context, method string, err error) error {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			if e.code == codes.Unavailable {
				s.log.WarnContext(ctx, "purchase left pending", "method", method, "error", err)
			}
			return status.Error(e.code, e.err.Error())
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, "request cancelled")
	}
	s.log.ErrorContext(ctx, "internal error", "method", method, "error", err)
	return status.Error(codes.Internal, "internal error")
}
