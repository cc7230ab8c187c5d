package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/services/auth/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/auth/internal/app"
	"github.com/merchshop/merchshop/services/auth/internal/testdb"
)

func newSession(expires time.Time) app.NewSession {
	return app.NewSession{ID: uuid.NewString(), UserID: uuid.NewString(), Username: "u", UserAgentHash: "ua", ExpiresAt: expires}
}

func TestRotateActions(t *testing.T) {
	ctx := context.Background()
	pool := testdb.Pool(t)
	s := postgres.New(pool)
	n := newSession(time.Now().Add(time.Hour))
	if err := s.Create(ctx, n, "h0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, "nope", func(app.RefreshState) app.RotateAction {
		t.Fatal("decide called for an unknown token")
		return app.RotateAction{}
	}); !errors.Is(err, app.ErrUnknownRefreshToken) {
		t.Fatalf("unknown token: %v", err)
	}

	newExpiry := time.Now().Add(2 * time.Hour).Truncate(time.Microsecond)
	st, err := s.Rotate(ctx, "h0", func(st app.RefreshState) app.RotateAction {
		if st.SessionID != n.ID || st.UserID != n.UserID || st.Username != "u" || st.UserAgentHash != "ua" || st.Used || st.Revoked {
			t.Errorf("state %+v", st)
		}
		return app.RotateAction{Kind: app.Replace, NewTokenHash: "h1", NewExpiresAt: newExpiry}
	})
	if err != nil || st.SessionID != n.ID {
		t.Fatalf("replace: %+v %v", st, err)
	}
	var usedAt *time.Time
	var expires time.Time
	if err := pool.QueryRow(ctx, `SELECT used_at FROM refresh_tokens WHERE token_hash = 'h0'`).Scan(&usedAt); err != nil || usedAt == nil {
		t.Fatalf("h0 not marked used: %v", err)
	}
	if err := pool.QueryRow(ctx, `SELECT expires_at FROM sessions WHERE id = $1`, n.ID).Scan(&expires); err != nil || !expires.Equal(newExpiry) {
		t.Fatalf("expiry %v (%v), want %v", expires, err, newExpiry)
	}

	st, err = s.Rotate(ctx, "h0", func(st app.RefreshState) app.RotateAction {
		if !st.Used {
			t.Error("h0 not reported used")
		}
		return app.RotateAction{Kind: app.RevokeSession}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, "h1", func(st app.RefreshState) app.RotateAction {
		if !st.Revoked || st.Used {
			t.Errorf("h1 state %+v: want revoked, unused", st)
		}
		return app.RotateAction{Kind: app.Keep}
	}); err != nil {
		t.Fatal(err)
	}
}

func TestRefreshTokensStoredHashedOnly(t *testing.T) {
	ctx := context.Background()
	pool := testdb.Pool(t)
	s := postgres.New(pool)
	const token = "the-plain-token"
	if err := s.Create(ctx, newSession(time.Now().Add(time.Hour)), app.HashToken(token)); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := pool.QueryRow(ctx, `SELECT token_hash FROM refresh_tokens`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == token || len(stored) != 64 {
		t.Fatalf("stored %q: want the hex SHA-256, not the token", stored)
	}
}

func TestPurgeExpired(t *testing.T) {
	ctx := context.Background()
	pool := testdb.Pool(t)
	s := postgres.New(pool)
	now := time.Now()
	old, live := newSession(now.Add(-48*time.Hour)), newSession(now.Add(time.Hour))
	if err := s.Create(ctx, old, "old"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, live, "live"); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeExpired(ctx, now.Add(-24*time.Hour), 100)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	var sessions, tokens int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM refresh_tokens)`).Scan(&sessions, &tokens); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 || tokens != 1 {
		t.Fatalf("%d sessions %d tokens left, want 1 and 1", sessions, tokens)
	}
}
