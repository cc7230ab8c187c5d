package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	shopv1 "github.com/merchshop/merchshop/gen/shop/v1"
	"github.com/merchshop/merchshop/pkg/identity"
)

type nameAuth struct {
	AuthBackend
	names []string
}

func (f *nameAuth) Login(_ context.Context, in *authv1.LoginRequest, _ ...grpc.CallOption) (*authv1.Session, error) {
	f.names = append(f.names, in.GetUsername())
	return &authv1.Session{AccessToken: "t", RefreshToken: "r", RefreshExpiresAt: 1}, nil
}

type nameCoins struct {
	names []string
}

func (f *nameCoins) Transfer(_ context.Context, in *coinsv1.TransferRequest, _ ...grpc.CallOption) (*coinsv1.TransactionResponse, error) {
	f.names = append(f.names, in.GetToUsername())
	return &coinsv1.TransactionResponse{TransactionId: "tx"}, nil
}

// headerStream lets Auth set its session header outside a real server.
type headerStream struct{ grpc.ServerTransportStream }

func (headerStream) SetHeader(metadata.MD) error { return nil }

func wantRefusal(t *testing.T, err error, msg, what string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), msg) {
		t.Errorf("%s: %v, want InvalidArgument %q...", what, err, msg)
	}
}

func TestAuthSendsTheNormalFormAndRefusesNonNames(t *testing.T) {
	auth := &nameAuth{}
	s := New(Backends{Auth: auth}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := grpc.NewContextWithServerTransportStream(context.Background(), headerStream{})
	if _, err := s.Auth(ctx, &shopv1.AuthRequest{Username: "Rene\u0301e", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Auth(ctx, &shopv1.AuthRequest{Username: "\u0430lice", Password: "pw"}); err != nil {
		t.Fatalf("a name only the registration rule refuses must reach auth (it may be stored): %v", err)
	}
	if want := []string{"Ren\u00e9e", "\u0430lice"}; strings.Join(auth.names, ",") != strings.Join(want, ",") {
		t.Errorf("auth got %q, want %q", auth.names, want)
	}
	for name, msg := range map[string]string{
		"":                      "username is required",
		"a b":                   "username must not contain spaces",
		strings.Repeat("я", 65): "username must be at most 64 characters",
		"bad\xff":               "username must be valid UTF-8",
		"rlo\u202e":             "username must not contain control or invisible characters",
	} {
		_, err := s.Auth(ctx, &shopv1.AuthRequest{Username: name, Password: "pw"})
		wantRefusal(t, err, msg, "auth "+name)
	}
	if len(auth.names) != 2 {
		t.Errorf("refused names reached auth: %q", auth.names)
	}
}

func TestTransferSendsTheNormalFormAndRefusesNonNames(t *testing.T) {
	coins := &nameCoins{}
	s := New(Backends{Coins: coins}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := identity.WithCaller(context.Background(), identity.Caller{UserID: "7b3f0c1e-0000-4000-8000-000000000001", Username: "Алексей"})
	if _, err := s.SendCoin(ctx, &shopv1.SendCoinRequest{ToUser: "Rene\u0301e", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LegacySendCoins(ctx, &shopv1.LegacySendCoinsRequest{ToUser: "e\u0301", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Ren\u00e9e", "\u00e9"}; strings.Join(coins.names, ",") != strings.Join(want, ",") {
		t.Errorf("coins got %q, want %q", coins.names, want)
	}
	_, err := s.SendCoin(ctx, &shopv1.SendCoinRequest{ToUser: "a b", Amount: 1})
	wantRefusal(t, err, "toUser: username must not contain spaces", "sendCoin")
	_, err = s.SendCoin(ctx, &shopv1.SendCoinRequest{ToUser: strings.Repeat("z", 65), Amount: 1})
	wantRefusal(t, err, "toUser: username must be at most 64 characters", "sendCoin")
	_, err = s.LegacySendCoins(ctx, &shopv1.LegacySendCoinsRequest{ToUser: "bad\xff", Amount: 1})
	wantRefusal(t, err, "to_user: username must be valid UTF-8", "legacy send")
	if len(coins.names) != 2 {
		t.Errorf("refused recipients reached coins: %q", coins.names)
	}
}
