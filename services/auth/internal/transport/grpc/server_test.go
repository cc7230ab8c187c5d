package grpc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	"github.com/merchshop/merchshop/services/auth/internal/adapters/accesstoken"
	"github.com/merchshop/merchshop/services/auth/internal/app"
	"github.com/merchshop/merchshop/services/auth/internal/keys"
	grpctransport "github.com/merchshop/merchshop/services/auth/internal/transport/grpc"
)

type users struct{ err error }

func (u users) CreateIfNotExists(context.Context, string, string) (string, error) {
	if u.err != nil {
		return "", u.err
	}
	return "6f9619ff-8b86-d011-b42d-00c04fc964ff", nil
}

type accounts struct{}

func (accounts) OpenAccount(context.Context, string, string) error { return nil }

type sessions struct{}

func (sessions) Create(context.Context, app.NewSession, string) error { return nil }
func (sessions) Rotate(context.Context, string, func(app.RefreshState) app.RotateAction) (app.RefreshState, error) {
	return app.RefreshState{}, app.ErrUnknownRefreshToken
}
func (sessions) RevokeByToken(context.Context, string) error { return nil }

func server(t *testing.T, usersErr error) (*grpctransport.Server, *accesstoken.Issuer) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tokens, err := accesstoken.NewIssuer(key, nil, accesstoken.Config{Issuer: "iss", Audience: "aud", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := app.New(users{usersErr}, accounts{}, sessions{}, tokens, log, app.Config{RefreshTTL: time.Hour})
	return grpctransport.New(svc, log), tokens
}

func TestLoginErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{&app.InputError{Message: "password must be 1 to 72 printable characters"}, codes.InvalidArgument, "password must be 1 to 72 printable characters"},
		{&app.CredentialsError{Message: "invalid username or password"}, codes.Unauthenticated, "invalid username or password"},
		{fmt.Errorf("user service: %w: boom", app.ErrUnavailable), codes.Unavailable, "service temporarily unavailable"},
		{errors.New("user service: sql: relation does not exist"), codes.Internal, "internal error"},
	}
	for _, c := range cases {
		srv, _ := server(t, c.err)
		_, err := srv.Login(context.Background(), &authv1.LoginRequest{Username: "a", Password: "b"})
		st := status.Convert(err)
		if st.Code() != c.code || st.Message() != c.msg {
			t.Errorf("%v: got %v %q, want %v %q", c.err, st.Code(), st.Message(), c.code, c.msg)
		}
	}
}

func TestRefreshLogoutCodes(t *testing.T) {
	srv, _ := server(t, nil)
	ctx := context.Background()
	_, err := srv.Refresh(ctx, &authv1.RefreshRequest{RefreshToken: "unknown"})
	if st := status.Convert(err); st.Code() != codes.Unauthenticated || st.Message() != "invalid refresh token" {
		t.Errorf("refresh unknown: %v", st)
	}
	_, err = srv.Logout(ctx, &authv1.LogoutRequest{})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument {
		t.Errorf("logout empty: %v", st)
	}
	if _, err := srv.Logout(ctx, &authv1.LogoutRequest{RefreshToken: "unknown"}); err != nil {
		t.Errorf("logout unknown: %v", err)
	}
}

func TestLoginAndPublicKeys(t *testing.T) {
	srv, tokens := server(t, nil)
	ctx := context.Background()
	sess, err := srv.Login(ctx, &authv1.LoginRequest{Username: "a", Password: "b", UserAgent: "ua"})
	if err != nil {
		t.Fatal(err)
	}
	if sess.GetAccessToken() == "" || sess.GetRefreshToken() == "" || sess.GetRefreshExpiresAt() <= time.Now().Unix() ||
		sess.GetUserId() != "6f9619ff-8b86-d011-b42d-00c04fc964ff" {
		t.Fatalf("session %v", sess)
	}
	keysResp, err := srv.GetPublicKeys(ctx, &authv1.GetPublicKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if keysResp.GetIssuer() != "iss" || keysResp.GetAudience() != "aud" || len(keysResp.GetKeys()) != 1 {
		t.Fatalf("keys %v", keysResp)
	}
	k := keysResp.GetKeys()[0]
	if k.GetKid() != tokens.KID() || k.GetAlgorithm() != "EdDSA" || keys.KeyID(ed25519.PublicKey(k.GetKey())) != k.GetKid() {
		t.Fatalf("key %v", k)
	}
}
