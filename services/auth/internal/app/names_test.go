package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/merchshop/merchshop/pkg/username"
	"github.com/merchshop/merchshop/services/auth/internal/app"
)

// namesSeen records the name each backend and the session store got.
type namesSeen struct {
	mu                      sync.Mutex
	users, accounts, stored []string
}

type recordingUsers struct{ n *namesSeen }

func (r recordingUsers) CreateIfNotExists(_ context.Context, name, _ string) (string, error) {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	r.n.users = append(r.n.users, name)
	return "7a0c5d2e-3b4f-4e6a-8c1d-9f0e1a2b3c4d", nil
}

type recordingAccounts struct{ n *namesSeen }

func (r recordingAccounts) OpenAccount(_ context.Context, _, name string) error {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	r.n.accounts = append(r.n.accounts, name)
	return nil
}

type recordingSessions struct {
	failingSessions
	n *namesSeen
}

func (r recordingSessions) Create(_ context.Context, s app.NewSession, _ string) error {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	r.n.stored = append(r.n.stored, s.Username)
	return nil
}

func TestLoginUsesTheNormalFormOfTheName(t *testing.T) {
	seen := &namesSeen{}
	f := newFixture(t, recordingSessions{failingSessions{t}, seen})
	svc := app.New(recordingUsers{seen}, recordingAccounts{seen}, recordingSessions{failingSessions{t}, seen}, f.tokens,
		slog.New(slog.NewTextHandler(io.Discard, nil)), app.Config{RefreshTTL: refreshTTL, Now: f.clock.Now})
	sess, err := svc.Login(context.Background(), "Rene\u0301e", "pw", "ua")
	if err != nil {
		t.Fatal(err)
	}
	const want = "Ren\u00e9e"
	for what, got := range map[string][]string{"user service": seen.users, "coins": seen.accounts, "session": seen.stored} {
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s got %q, want [%q]", what, got, want)
		}
	}
	if claims := f.verify(t, sess.AccessToken); claims.Name != want {
		t.Errorf("token name %q, want %q", claims.Name, want)
	}
}

func TestLoginRefusesWhatIsNeverAName(t *testing.T) {
	seen := &namesSeen{}
	f := newFixture(t, failingSessions{t})
	svc := app.New(recordingUsers{seen}, recordingAccounts{seen}, failingSessions{t}, f.tokens,
		slog.New(slog.NewTextHandler(io.Discard, nil)), app.Config{RefreshTTL: refreshTTL, Now: f.clock.Now})
	for name, rule := range map[string]error{
		"":                      username.ErrRequired,
		"a b":                   username.ErrSpace,
		strings.Repeat("я", 65): username.ErrTooLong,
		"bad\xff":               username.ErrEncoding,
		"zero\u200bwidth":       username.ErrInvisible,
	} {
		_, err := svc.Login(context.Background(), name, "pw", "ua")
		var input *app.InputError
		if !errors.As(err, &input) || !strings.HasPrefix(input.Message, rule.Error()) {
			t.Errorf("Login(%q) = %v, want an input error naming %q", name, err, rule)
		}
	}
	if len(seen.users)+len(seen.accounts) != 0 {
		t.Errorf("refused names reached the backends: %+v", seen)
	}
}
