// Package app holds the auth service's use cases: login (registering on
// first login), refresh-token rotation with reuse detection, logout, and
// the public keys that verify access tokens.
package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/username"
)

// Users is the part of the user service Login needs.
type Users interface {
	// CreateIfNotExists registers the user or checks the password of an
	// existing one. It returns *InputError or *CredentialsError for input
	// the client must fix, and wraps ErrUnavailable for passing failures.
	CreateIfNotExists(ctx context.Context, username, password string) (userID string, err error)
}

// Accounts is the part of the coins service Login needs.
type Accounts interface {
	// OpenAccount opens the user's account with the welcome grant; it is
	// idempotent.
	OpenAccount(ctx context.Context, userID, username string) error
}

// NewSession is a session to store with its first refresh token.
type NewSession struct {
	ID            string
	UserID        string
	Username      string
	UserAgentHash string
	ExpiresAt     time.Time
}

// RefreshState is a stored refresh token and its session, as read (and
// locked) by SessionStore.Rotate.
type RefreshState struct {
	SessionID     string
	UserID        string
	Username      string
	UserAgentHash string
	ExpiresAt     time.Time
	Revoked       bool
	// Used: the token was rotated before.
	Used bool
}

// RotateKind says what Rotate must do with a token.
type RotateKind int

// What Rotate can do.
const (
	// Keep changes nothing (the token is refused).
	Keep RotateKind = iota
	// RevokeSession ends the token's session.
	RevokeSession
	// Replace marks the token used, adds NewTokenHash to the session and
	// moves the session's expiry to NewExpiresAt.
	Replace
)

// RotateAction is the decision Rotate applies.
type RotateAction struct {
	Kind         RotateKind
	NewTokenHash string
	NewExpiresAt time.Time
}

// SessionStore persists sessions and refresh tokens (hashes only).
type SessionStore interface {
	// Create stores the session and its first refresh token together.
	Create(ctx context.Context, s NewSession, tokenHash string) error
	// Rotate reads the token and its session, locked so that concurrent
	// rotations of one session run one after the other, calls decide with
	// them and applies its decision in the same transaction. decide must
	// have no side effects (it may be called again on a retry). Rotate
	// returns ErrUnknownRefreshToken when the token is not stored.
	Rotate(ctx context.Context, tokenHash string, decide func(RefreshState) RotateAction) (RefreshState, error)
	// RevokeByToken ends the session of the token; an unknown token or an
	// ended session is not an error.
	RevokeByToken(ctx context.Context, tokenHash string) error
}

// PublicKey verifies access tokens.
type PublicKey struct {
	KID       string
	Algorithm string
	Key       []byte
}

// TokenIssuer signs access tokens.
type TokenIssuer interface {
	Issue(userID, username string) (string, error)
	// PublicKeys lists the verification keys, the current signing key
	// first.
	PublicKeys() []PublicKey
	Issuer() string
	Audience() string
}

// Session is what Login and Refresh hand to the client.
type Session struct {
	AccessToken      string
	RefreshToken     string
	RefreshExpiresAt time.Time
	UserID           string
}

// KeySet is what GetPublicKeys answers.
type KeySet struct {
	Keys     []PublicKey
	Issuer   string
	Audience string
}

// Service implements the use cases.
type Service struct {
	users      Users
	accounts   Accounts
	sessions   SessionStore
	tokens     TokenIssuer
	refreshTTL time.Duration
	log        *slog.Logger
	now        func() time.Time
}

// Config tunes the service.
type Config struct {
	// RefreshTTL is how long a session lives after its last refresh.
	RefreshTTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// New returns the service.
func New(users Users, accounts Accounts, sessions SessionStore, tokens TokenIssuer, log *slog.Logger, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		users: users, accounts: accounts, sessions: sessions, tokens: tokens,
		refreshTTL: cfg.RefreshTTL, log: log, now: cfg.Now,
	}
}

// Login checks the credentials (registering the user on first login),
// makes sure the user's coin account exists and opens a session.
func (s *Service) Login(ctx context.Context, name, password, userAgent string) (Session, error) {
	// One form of the name for the user, the account, the session and the
	// token (pkg/username.Normalize: NFC); the user service decides whether
	// a new name may be registered.
	username, err := username.Normalize(name)
	if err != nil {
		return Session{}, &InputError{Message: err.Error()}
	}
	userID, err := s.users.CreateIfNotExists(ctx, username, password)
	if err != nil {
		return Session{}, err
	}
	// Always, not only when the user was just created: a first login that
	// crashed between registration and this call left a user without an
	// account, and the welcome coins must be there on the next request.
	// OpenAccount is idempotent and cheap for an existing account.
	if err := s.accounts.OpenAccount(ctx, userID, username); err != nil {
		return Session{}, err
	}
	refresh, err := newRefreshToken()
	if err != nil {
		return Session{}, err
	}
	sess := NewSession{
		ID: uuid.NewString(), UserID: userID, Username: username,
		UserAgentHash: HashUserAgent(userAgent), ExpiresAt: s.now().Add(s.refreshTTL),
	}
	if err := s.sessions.Create(ctx, sess, HashToken(refresh)); err != nil {
		return Session{}, err
	}
	access, err := s.tokens.Issue(userID, username)
	if err != nil {
		return Session{}, fmt.Errorf("issue access token: %w", err)
	}
	return Session{AccessToken: access, RefreshToken: refresh, RefreshExpiresAt: sess.ExpiresAt, UserID: userID}, nil
}

// Refresh rotates a refresh token: the token is marked used and a new one
// is issued in the same session, with a new access token. Presenting a
// token that was already rotated means it leaked (or the client is
// confused): the whole session is revoked, so the newest token of the
// session stops working too.
func (s *Service) Refresh(ctx context.Context, token, userAgent string) (Session, error) {
	if token == "" {
		return Session{}, ErrInvalidRefreshToken
	}
	next, err := newRefreshToken()
	if err != nil {
		return Session{}, err
	}
	uaHash := HashUserAgent(userAgent)
	now := s.now()
	expires := now.Add(s.refreshTTL)
	var refused error
	state, err := s.sessions.Rotate(ctx, HashToken(token), func(st RefreshState) RotateAction {
		switch {
		case st.Revoked || !now.Before(st.ExpiresAt):
			refused = ErrInvalidRefreshToken
			return RotateAction{Kind: Keep}
		case st.Used:
			refused = ErrRefreshTokenReuse
			return RotateAction{Kind: RevokeSession}
		case st.UserAgentHash != uaHash:
			refused = ErrUserAgentMismatch
			return RotateAction{Kind: Keep}
		}
		refused = nil
		return RotateAction{Kind: Replace, NewTokenHash: HashToken(next), NewExpiresAt: expires}
	})
	if errors.Is(err, ErrUnknownRefreshToken) {
		return Session{}, ErrInvalidRefreshToken
	}
	if err != nil {
		return Session{}, err
	}
	if refused != nil {
		if errors.Is(refused, ErrRefreshTokenReuse) {
			s.log.WarnContext(ctx, "refresh token reuse; session revoked", "session_id", state.SessionID, "user_id", state.UserID)
		}
		return Session{}, refused
	}
	access, err := s.tokens.Issue(state.UserID, state.Username)
	if err != nil {
		return Session{}, fmt.Errorf("issue access token: %w", err)
	}
	return Session{AccessToken: access, RefreshToken: next, RefreshExpiresAt: expires, UserID: state.UserID}, nil
}

// Logout ends the session of a refresh token. It is idempotent: an unknown
// token, or one of an ended session, is fine.
func (s *Service) Logout(ctx context.Context, token string) error {
	if token == "" {
		return ErrRefreshTokenMissing
	}
	return s.sessions.RevokeByToken(ctx, HashToken(token))
}

// PublicKeys returns the keys that verify access tokens, the current one
// first, with the issuer and audience the tokens carry.
func (s *Service) PublicKeys() KeySet {
	return KeySet{Keys: s.tokens.PublicKeys(), Issuer: s.tokens.Issuer(), Audience: s.tokens.Audience()}
}

// HashToken is how refresh tokens are stored: hex SHA-256. The tokens are
// 256 random bits, so a plain hash is enough (no salt or slow hash needed).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// HashUserAgent is how a session remembers its client.
func HashUserAgent(ua string) string {
	sum := sha256.Sum256([]byte(ua))
	return hex.EncodeToString(sum[:])
}

func newRefreshToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("refresh token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
