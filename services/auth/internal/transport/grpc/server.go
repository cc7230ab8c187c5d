// Package grpc serves the auth service's gRPC API: it calls the use cases
// and maps their errors to status codes.
package grpc

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	"github.com/merchshop/merchshop/services/auth/internal/app"
)

// Server implements authv1.AuthServiceServer.
type Server struct {
	authv1.UnimplementedAuthServiceServer
	app *app.Service
	log *slog.Logger
}

// New returns the gRPC handlers over svc.
func New(svc *app.Service, log *slog.Logger) *Server { return &Server{app: svc, log: log} }

// Login implements authv1.AuthServiceServer.
func (s *Server) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.Session, error) {
	sess, err := s.app.Login(ctx, req.GetUsername(), req.GetPassword(), req.GetUserAgent())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return toProto(sess), nil
}

// Refresh implements authv1.AuthServiceServer.
func (s *Server) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.Session, error) {
	sess, err := s.app.Refresh(ctx, req.GetRefreshToken(), req.GetUserAgent())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return toProto(sess), nil
}

// Logout implements authv1.AuthServiceServer.
func (s *Server) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	if err := s.app.Logout(ctx, req.GetRefreshToken()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &authv1.LogoutResponse{}, nil
}

// GetPublicKeys implements authv1.AuthServiceServer.
func (s *Server) GetPublicKeys(context.Context, *authv1.GetPublicKeysRequest) (*authv1.GetPublicKeysResponse, error) {
	set := s.app.PublicKeys()
	resp := &authv1.GetPublicKeysResponse{Issuer: set.Issuer, Audience: set.Audience}
	for _, k := range set.Keys {
		resp.Keys = append(resp.Keys, &authv1.PublicKey{Kid: k.KID, Algorithm: k.Algorithm, Key: k.Key})
	}
	return resp, nil
}

func toProto(s app.Session) *authv1.Session {
	return &authv1.Session{
		AccessToken: s.AccessToken, RefreshToken: s.RefreshToken,
		RefreshExpiresAt: s.RefreshExpiresAt.Unix(), UserId: s.UserID,
	}
}

// status is the one place where errors become gRPC codes.
func (s *Server) status(ctx context.Context, err error) error {
	var input *app.InputError
	var creds *app.CredentialsError
	switch {
	case errors.As(err, &input):
		return status.Error(codes.InvalidArgument, input.Message)
	case errors.As(err, &creds):
		return status.Error(codes.Unauthenticated, creds.Message)
	case errors.Is(err, app.ErrRefreshTokenMissing):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, app.ErrInvalidRefreshToken), errors.Is(err, app.ErrRefreshTokenReuse),
		errors.Is(err, app.ErrUserAgentMismatch):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, app.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.log.WarnContext(ctx, "backend unavailable", "error", err)
		return status.Error(codes.Unavailable, app.ErrUnavailable.Error())
	}
	s.log.ErrorContext(ctx, "internal error", "error", err)
	return status.Error(codes.Internal, "internal error")
}
