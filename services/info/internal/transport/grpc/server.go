// Package grpc is the info service's gRPC transport: it calls the use cases
// and maps their errors to status codes, in one place.
package grpc

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	infov1 "github.com/merchshop/merchshop/gen/info/v1"
	"github.com/merchshop/merchshop/services/info/internal/app"
)

// Server implements infov1.InfoServiceServer.
type Server struct {
	infov1.UnimplementedInfoServiceServer
	svc *app.Service
	log *slog.Logger
}

// New returns the handlers for svc.
func New(svc *app.Service, log *slog.Logger) *Server { return &Server{svc: svc, log: log} }

// GetInfo implements infov1.InfoServiceServer.
func (s *Server) GetInfo(ctx context.Context, req *infov1.GetInfoRequest) (*infov1.GetInfoResponse, error) {
	info, err := s.svc.GetInfo(ctx, req.GetUserId())
	if err != nil {
		return nil, s.toStatus(ctx, "GetInfo", err)
	}
	resp := &infov1.GetInfoResponse{
		Coins:     info.Coins,
		Inventory: make([]*infov1.InventoryItem, 0, len(info.Inventory)),
		Received:  totals(info.Received),
		Sent:      totals(info.Sent),
	}
	for _, it := range info.Inventory {
		resp.Inventory = append(resp.Inventory, &infov1.InventoryItem{Item: it.Item, Quantity: it.Quantity})
	}
	return resp, nil
}

func totals(in []app.CounterpartTotal) []*infov1.CounterpartTotal {
	out := make([]*infov1.CounterpartTotal, 0, len(in))
	for _, t := range in {
		out = append(out, &infov1.CounterpartTotal{Username: t.Username, Amount: t.Amount})
	}
	return out
}

// GetHistory implements infov1.InfoServiceServer.
func (s *Server) GetHistory(ctx context.Context, req *infov1.GetHistoryRequest) (*infov1.GetHistoryResponse, error) {
	page, err := s.svc.GetHistory(ctx, req.GetUserId(), req.GetCursor(), int(req.GetLimit()))
	if err != nil {
		return nil, s.toStatus(ctx, "GetHistory", err)
	}
	resp := &infov1.GetHistoryResponse{
		Entries:    make([]*infov1.HistoryEntry, 0, len(page.Entries)),
		NextCursor: page.NextCursor,
	}
	for _, e := range page.Entries {
		resp.Entries = append(resp.Entries, &infov1.HistoryEntry{
			TransactionId: e.TransactionID, Kind: e.Kind, Counterpart: e.Counterpart,
			Amount: e.Amount, TimeUnixMs: e.CreatedAt.UnixMilli(),
		})
	}
	return resp, nil
}

var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{app.ErrInvalidUserID, codes.InvalidArgument},
	{app.ErrInvalidLimit, codes.InvalidArgument},
	{app.ErrInvalidCursor, codes.InvalidArgument},
	{app.ErrAccountNotFound, codes.NotFound},
	{app.ErrUnavailable, codes.Unavailable},
}

func (s *Server) toStatus(ctx context.Context, method string, err error) error {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			if e.code == codes.Unavailable {
				s.log.WarnContext(ctx, "backend failure", "method", method, "error", err)
			}
			return status.Error(e.code, e.err.Error())
		}
	}
	s.log.ErrorContext(ctx, "internal error", "method", method, "error", err)
	return status.Error(codes.Internal, "internal error")
}
