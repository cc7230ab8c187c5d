package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/services/auth/internal/adapters/accesstoken"
	"github.com/merchshop/merchshop/services/auth/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/auth/internal/app"
	"github.com/merchshop/merchshop/services/auth/internal/testdb"
)

// fakeUsers stands in for the user service: one id per name, one password
// per name, first login registers.
type fakeUsers struct {
	mu    sync.Mutex
	users map[string][2]string // name -> {id, password}
	err   error
}

func (f *fakeUsers) CreateIfNotExists(_ context.Context, name, pw string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	if f.users == nil {
		f.users = map[string][2]string{}
	}
	u, ok := f.users[name]
	if !ok {
		u = [2]string{uuid.NewString(), pw}
		f.users[name] = u
	}
	if u[1] != pw {
		return "", &app.CredentialsError{Message: "invalid username or password"}
	}
	return u[0], nil
}

// fakeAccounts stands in for the coins service, counting OpenAccount calls.
type fakeAccounts struct {
	mu    sync.Mutex
	calls map[string]int
	err   error
}

func (f *fakeAccounts) OpenAccount(_ context.Context, userID, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[userID]++
	return f.err
}

func (f *fakeAccounts) count(userID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[userID]
}

// failingSessions is a SessionStore that must not be reached.
type failingSessions struct{ t *testing.T }

func (f failingSessions) Create(context.Context, app.NewSession, string) error {
	f.t.Error("session created although login failed")
	return errors.New("unexpected")
}

func (f failingSessions) Rotate(context.Context, string, func(app.RefreshState) app.RotateAction) (app.RefreshState, error) {
	f.t.Error("unexpected Rotate")
	return app.RefreshState{}, errors.New("unexpected")
}

func (f failingSessions) RevokeByToken(context.Context, string) error {
	f.t.Error("unexpected RevokeByToken")
	return errors.New("unexpected")
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	svc      *app.Service
	users    *fakeUsers
	accounts *fakeAccounts
	tokens   *accesstoken.Issuer
	clock    *clock
}

const refreshTTL = 720 * time.Hour

func newFixture(t *testing.T, sessions app.SessionStore) fixture {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Now().Truncate(time.Second)}
	tokens, err := accesstoken.NewIssuer(key, nil, accesstoken.Config{
		Issuer: "merch-shop-auth", Audience: "merch-shop", TTL: time.Hour, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sessions == nil {
		sessions = postgres.New(testdb.Pool(t))
	}
	f := fixture{users: &fakeUsers{}, accounts: &fakeAccounts{}, tokens: tokens, clock: c}
	f.svc = app.New(f.users, f.accounts, sessions, tokens,
		slog.New(slog.NewTextHandler(io.Discard, nil)), app.Config{RefreshTTL: refreshTTL, Now: c.Now})
	return f
}

func (f fixture) verify(t *testing.T, access string) *accesstoken.Claims {
	t.Helper()
	claims, err := accesstoken.Verify(access, f.svc.PublicKeys(), f.clock.Now)
	if err != nil {
		t.Fatalf("access token does not verify: %v", err)
	}
	return claims
}

func TestLoginIssuesTokensAndAlwaysOpensTheAccount(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)

	s1, err := f.svc.Login(ctx, "alice", "pw", "ua/1")
	if err != nil {
		t.Fatal(err)
	}
	claims := f.verify(t, s1.AccessToken)
	if claims.Subject != s1.UserID || claims.Name != "alice" || s1.UserID == "" {
		t.Fatalf("claims %+v for session %+v", claims, s1)
	}
	if s1.RefreshToken == "" || len(s1.RefreshToken) != 43 {
		t.Fatalf("refresh token %q: want 32 random bytes in base64url", s1.RefreshToken)
	}
	if !s1.RefreshExpiresAt.Equal(f.clock.Now().Add(refreshTTL)) {
		t.Fatalf("refresh expires %v", s1.RefreshExpiresAt)
	}

	s2, err := f.svc.Login(ctx, "alice", "pw", "ua/1")
	if err != nil {
		t.Fatal(err)
	}
	if s2.UserID != s1.UserID || s2.RefreshToken == s1.RefreshToken || s2.AccessToken == s1.AccessToken {
		t.Fatal("second login must be the same user with new tokens")
	}
	// The account is opened on every login, not only the first.
	if n := f.accounts.count(s1.UserID); n != 2 {
		t.Fatalf("OpenAccount called %d times for 2 logins", n)
	}
	// Two logins are two independent sessions.
	if _, err := f.svc.Refresh(ctx, s1.RefreshToken, "ua/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Refresh(ctx, s2.RefreshToken, "ua/1"); err != nil {
		t.Fatal(err)
	}
}

func TestLoginFailuresOpenNoSession(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name        string
		usersErr    error
		accountsErr error
		check       func(error) bool
	}{
		{"bad input", &app.InputError{Message: "username must be 1 to 64 printable characters without spaces"}, nil,
			func(err error) bool { var e *app.InputError; return errors.As(err, &e) }},
		{"wrong password", &app.CredentialsError{Message: "invalid username or password"}, nil,
			func(err error) bool { var e *app.CredentialsError; return errors.As(err, &e) }},
		{"user service down", app.ErrUnavailable, nil,
			func(err error) bool { return errors.Is(err, app.ErrUnavailable) }},
		{"coins service down", nil, app.ErrUnavailable,
			func(err error) bool { return errors.Is(err, app.ErrUnavailable) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, failingSessions{t})
			f.users.err = c.usersErr
			f.accounts.err = c.accountsErr
			_, err := f.svc.Login(ctx, "bob", "pw", "ua")
			if !c.check(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestRefreshRotates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s0, err := f.svc.Login(ctx, "carol", "pw", "ua")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour)
	s1, err := f.svc.Refresh(ctx, s0.RefreshToken, "ua")
	if err != nil {
		t.Fatal(err)
	}
	if s1.RefreshToken == s0.RefreshToken || s1.UserID != s0.UserID {
		t.Fatalf("rotation gave %+v", s1)
	}
	if claims := f.verify(t, s1.AccessToken); claims.Subject != s0.UserID || claims.Name != "carol" {
		t.Fatalf("claims after refresh %+v", claims)
	}
	// The session's expiry slides with each refresh.
	if !s1.RefreshExpiresAt.Equal(f.clock.Now().Add(refreshTTL)) {
		t.Fatalf("refresh expiry %v, want %v", s1.RefreshExpiresAt, f.clock.Now().Add(refreshTTL))
	}
	s2, err := f.svc.Refresh(ctx, s1.RefreshToken, "ua")
	if err != nil {
		t.Fatal(err)
	}
	if s2.RefreshToken == s1.RefreshToken {
		t.Fatal("not rotated")
	}
}

func TestReuseOfRotatedTokenRevokesTheSession(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s0, _ := f.svc.Login(ctx, "dave", "pw", "ua")
	other, _ := f.svc.Login(ctx, "dave", "pw", "ua") // another session of the same user
	s1, err := f.svc.Refresh(ctx, s0.RefreshToken, "ua")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := f.svc.Refresh(ctx, s1.RefreshToken, "ua")
	if err != nil {
		t.Fatal(err)
	}

	// s0's token was rotated: presenting it again is reuse.
	if _, err := f.svc.Refresh(ctx, s0.RefreshToken, "ua"); !errors.Is(err, app.ErrRefreshTokenReuse) {
		t.Fatalf("reuse: %v, want ErrRefreshTokenReuse", err)
	}
	// The whole session is gone: its newest token fails too.
	if _, err := f.svc.Refresh(ctx, s2.RefreshToken, "ua"); !errors.Is(err, app.ErrInvalidRefreshToken) {
		t.Fatalf("newest token after reuse: %v, want ErrInvalidRefreshToken", err)
	}
	// Further reuse stays refused.
	if _, err := f.svc.Refresh(ctx, s1.RefreshToken, "ua"); err == nil {
		t.Fatal("rotated token accepted after revocation")
	}
	// Other sessions are untouched.
	if _, err := f.svc.Refresh(ctx, other.RefreshToken, "ua"); err != nil {
		t.Fatalf("another session was hit: %v", err)
	}
}

func TestConcurrentRefreshesOfOneTokenHaveOneWinner(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s0, _ := f.svc.Login(ctx, "erin", "pw", "ua")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = f.svc.Refresh(ctx, s0.RefreshToken, "ua")
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, app.ErrRefreshTokenReuse), errors.Is(err, app.ErrInvalidRefreshToken):
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent refreshes of one token succeeded, want 1", wins)
	}
}

func TestUserAgentMismatch(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s0, _ := f.svc.Login(ctx, "frank", "pw", "Firefox")
	if _, err := f.svc.Refresh(ctx, s0.RefreshToken, "curl"); !errors.Is(err, app.ErrUserAgentMismatch) {
		t.Fatalf("other client: %v, want ErrUserAgentMismatch", err)
	}
	// The refused attempt neither used the token nor ended the session.
	if _, err := f.svc.Refresh(ctx, s0.RefreshToken, "Firefox"); err != nil {
		t.Fatalf("own client after a refused attempt: %v", err)
	}
}

func TestLogout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s0, _ := f.svc.Login(ctx, "grace", "pw", "ua")
	s1, err := f.svc.Refresh(ctx, s0.RefreshToken, "ua")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Logout(ctx, s1.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Refresh(ctx, s1.RefreshToken, "ua"); !errors.Is(err, app.ErrInvalidRefreshToken) {
		t.Fatalf("refresh after logout: %v", err)
	}
	// Idempotent, with an old token of the session too, and for unknown tokens.
	for _, tok := range []string{s1.RefreshToken, s0.RefreshToken, "never-issued"} {
		if err := f.svc.Logout(ctx, tok); err != nil {
			t.Fatalf("logout %q: %v", tok, err)
		}
	}
	if err := f.svc.Logout(ctx, ""); !errors.Is(err, app.ErrRefreshTokenMissing) {
		t.Fatalf("empty token: %v", err)
	}
}

func TestRefreshRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	for _, tok := range []string{"", "never-issued"} {
		if _, err := f.svc.Refresh(ctx, tok, "ua"); !errors.Is(err, app.ErrInvalidRefreshToken) {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	s0, _ := f.svc.Login(ctx, "heidi", "pw", "ua")
	f.clock.Add(refreshTTL)
	if _, err := f.svc.Refresh(ctx, s0.RefreshToken, "ua"); !errors.Is(err, app.ErrInvalidRefreshToken) {
		t.Fatalf("expired session: %v", err)
	}
}
