// Package grpc serves the user service's gRPC API: it calls the use cases
// and maps their errors to status codes.
package grpc

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	userv1 "github.com/merchshop/merchshop/gen/user/v1"
	"github.com/merchshop/merchshop/services/user/internal/app"
)

// Server implements userv1.UserServiceServer.
type Server struct {
	userv1.UnimplementedUserServiceServer
	app *app.Service
	log *slog.Logger
}

// New returns the gRPC handlers over svc.
func New(svc *app.Service, log *slog.Logger) *Server { return &Server{app: svc, log: log} }

// CreateIfNotExists implements userv1.UserServiceServer.
func (s *Server) CreateIfNotExists(ctx context.Context, req *userv1.CreateIfNotExistsRequest) (*userv1.CreateIfNotExistsResponse, error) {
	id, created, err := s.app.CreateIfNotExists(ctx, req.GetUsername(), req.GetPassword())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &userv1.CreateIfNotExistsResponse{UserId: id, Created: created}, nil
}

// GetInventory implements userv1.UserServiceServer.
func (s *Server) GetInventory(ctx context.Context, req *userv1.GetInventoryRequest) (*userv1.GetInventoryResponse, error) {
	items, err := s.app.GetInventory(ctx, req.GetUserId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := make([]*userv1.InventoryItem, 0, len(items))
	for _, it := range items {
		out = append(out, &userv1.InventoryItem{Item: it.Item, Quantity: it.Quantity})
	}
	return &userv1.GetInventoryResponse{Items: out}, nil
}

// GrantItem implements userv1.UserServiceServer.
func (s *Server) GrantItem(ctx context.Context, req *userv1.GrantItemRequest) (*userv1.GrantItemResponse, error) {
	granted, err := s.app.GrantItem(ctx, app.Grant{OrderID: req.GetOrderId(), UserID: req.GetUserId(), Item: req.GetItem()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &userv1.GrantItemResponse{Granted: granted}, nil
}

// status is the one place where errors become gRPC codes.
func (s *Server) status(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, app.ErrInvalidUsername), errors.Is(err, app.ErrInvalidPassword),
		errors.Is(err, app.ErrInvalidUserID), errors.Is(err, app.ErrInvalidOrderID),
		errors.Is(err, app.ErrInvalidItem):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, app.ErrInvalidCredentials):
		return status.Error(codes.Unauthenticated, app.ErrInvalidCredentials.Error())
	case errors.Is(err, app.ErrUnknownUser):
		return status.Error(codes.NotFound, app.ErrUnknownUser.Error())
	case errors.Is(err, app.ErrOrderConflict):
		return status.Error(codes.AlreadyExists, app.ErrOrderConflict.Error())
	case errors.Is(err, app.ErrViewsUnavailable):
		s.log.WarnContext(ctx, "refused, the view cache is unavailable", "error", err)
		return status.Error(codes.Unavailable, app.ErrViewsUnavailable.Error())
	case errors.Is(err, app.ErrBusy):
		// Overload, counted by user_bcrypt_total{result="busy"}: no log
		// line per refusal.
		return status.Error(codes.ResourceExhausted, app.ErrBusy.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	s.log.ErrorContext(ctx, "internal error", "error", err)
	return status.Error(codes.Internal, "internal error")
}
