// Package postgres is the auth service's session store.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/pkg/postgres"
	"github.com/merchshop/merchshop/services/auth/internal/app"
)

// Sessions implements app.SessionStore.
type Sessions struct {
	pool *pgxpool.Pool
}

var _ app.SessionStore = (*Sessions)(nil)

// New returns the store on pool (migrated by the caller).
func New(pool *pgxpool.Pool) *Sessions { return &Sessions{pool: pool} }

// READ COMMITTED: Rotate locks the rows it decides on (FOR UPDATE), so a
// concurrent rotation waits and then reads the committed outcome; there is
// nothing for a stricter level to add.
var readCommitted = postgres.TxOptions{Isolation: pgx.ReadCommitted}

// Create implements app.SessionStore.
func (s *Sessions) Create(ctx context.Context, n app.NewSession, tokenHash string) error {
	// One statement, so atomic without an explicit transaction, and one
	// round trip instead of four (begin, two inserts, commit): every login
	// creates a session.
	_, err := s.pool.Exec(ctx, `
		WITH s AS (
		    INSERT INTO sessions (id, user_id, username, user_agent_hash, expires_at)
		    VALUES ($1, $2, $3, $4, $5) RETURNING id)
		INSERT INTO refresh_tokens (token_hash, session_id) SELECT $6, id FROM s`,
		n.ID, n.UserID, n.Username, n.UserAgentHash, n.ExpiresAt, tokenHash)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Rotate implements app.SessionStore. The token row and its session row are
// locked: two rotations of one token (or of one session) run one after the
// other, and the second sees the first one's outcome.
func (s *Sessions) Rotate(ctx context.Context, tokenHash string, decide func(app.RefreshState) app.RotateAction) (app.RefreshState, error) {
	var st app.RefreshState
	err := postgres.RunTx(ctx, s.pool, readCommitted, func(tx pgx.Tx) error {
		st = app.RefreshState{}
		var revokedAt, usedAt *time.Time
		err := tx.QueryRow(ctx,
			`SELECT s.id::text, s.user_id::text, s.username, s.user_agent_hash, s.expires_at, s.revoked_at, t.used_at
			   FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
			  WHERE t.token_hash = $1
			    FOR UPDATE`, tokenHash,
		).Scan(&st.SessionID, &st.UserID, &st.Username, &st.UserAgentHash, &st.ExpiresAt, &revokedAt, &usedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return app.ErrUnknownRefreshToken
		}
		if err != nil {
			return fmt.Errorf("select refresh token: %w", err)
		}
		st.Revoked, st.Used = revokedAt != nil, usedAt != nil

		act := decide(st)
		switch act.Kind {
		case app.Keep:
			return nil
		case app.RevokeSession:
			if _, err := tx.Exec(ctx,
				`UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, st.SessionID); err != nil {
				return fmt.Errorf("revoke session: %w", err)
			}
			return nil
		case app.Replace:
			if _, err := tx.Exec(ctx,
				`UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1`, tokenHash); err != nil {
				return fmt.Errorf("mark token used: %w", err)
			}
			if _, err := tx.Exec(ctx,
				`INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)`, act.NewTokenHash, st.SessionID); err != nil {
				return fmt.Errorf("insert refresh token: %w", err)
			}
			if _, err := tx.Exec(ctx,
				`UPDATE sessions SET expires_at = $2 WHERE id = $1`, st.SessionID, act.NewExpiresAt); err != nil {
				return fmt.Errorf("extend session: %w", err)
			}
			return nil
		}
		return fmt.Errorf("unknown rotate action %d", act.Kind)
	})
	if errors.Is(err, app.ErrUnknownRefreshToken) {
		return app.RefreshState{}, err
	}
	if err != nil {
		return app.RefreshState{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	return st, nil
}

// RevokeByToken implements app.SessionStore.
func (s *Sessions) RevokeByToken(ctx context.Context, tokenHash string) error {
	if _, err := s.pool.Exec(ctx,
		`UPDATE sessions SET revoked_at = now()
		  WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1) AND revoked_at IS NULL`,
		tokenHash); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// PurgeExpired deletes up to limit sessions (with their tokens) that
// expired before before, returning how many it deleted.
func (s *Sessions) PurgeExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx,
		`DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $1 LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Janitor returns a component that purges sessions expired for longer than
// keep, every interval, in bounded batches.
func (s *Sessions) Janitor(log *slog.Logger, interval, keep time.Duration) func(context.Context) error {
	const batch = 1000
	return func(ctx context.Context) error {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			for {
				n, err := s.PurgeExpired(ctx, time.Now().Add(-keep), batch)
				if err != nil {
					if ctx.Err() == nil {
						log.Warn("session purge failed; will retry", "error", err)
					}
					break
				}
				if n > 0 {
					log.Info("purged expired sessions", "count", n)
				}
				if n < batch {
					break
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}
