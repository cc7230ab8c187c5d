// Package app holds the user service's use cases: registration on first
// login, credential checks, inventories and idempotent item grants.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/viewcache"
)

// User is a registered user.
type User struct {
	ID           string
	Username     string
	PasswordHash string
}

// InventoryItem is one item type a user owns and how many.
type InventoryItem struct {
	Item     string
	Quantity int64
}

// Grant gives one item to a user for an order.
type Grant struct {
	OrderID string
	UserID  string
	Item    string
}

// Store persists users, inventories and grants.
type Store interface {
	// UserByName returns ErrUnknownUser when there is no such user.
	UserByName(ctx context.Context, username string) (User, error)
	// CreateUser inserts u. It returns false, and changes nothing, when the
	// username is taken.
	CreateUser(ctx context.Context, u User) (bool, error)
	// Inventory lists a user's items ordered by item name.
	Inventory(ctx context.Context, userID string) ([]InventoryItem, error)
	// Grant records the order and adds the item in one transaction. It
	// returns false when the order was granted before (a replay),
	// ErrOrderConflict when that earlier grant was for another user or item,
	// and ErrUnknownUser when the user does not exist.
	Grant(ctx context.Context, g Grant) (bool, error)
}

// Hasher hashes and checks passwords (bcrypt in production, in a bounded
// pool). Both fail with an error wrapping ErrBusy when the pool is full, or
// with the context's error when it ends while they wait.
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	// Matches reports whether password is the one hash was made from.
	Matches(ctx context.Context, hash, password string) (bool, error)
}

// CredentialCache remembers credentials that were verified recently, so
// that a repeated login does not pay for a full bcrypt comparison. Only
// successful verifications are stored.
type CredentialCache interface {
	Get(username, password string) (userID string, ok bool)
	Put(username, password, userID string)
}

// Views is the info view cache's invalidation (pkg/viewcache.Writer): a
// grant runs between Begin and End on its user, committing no later than
// the change's CommitBy; a Begin error means nothing may be granted.
type Views interface {
	Begin(ctx context.Context, userIDs ...string) (viewcache.Change, error)
	End(ctx context.Context, c viewcache.Change) error
}

// Service implements the use cases.
type Service struct {
	store  Store
	hasher Hasher
	cache  CredentialCache
	views  Views
	log    *slog.Logger
}

// New returns the service. cache may be nil.
func New(store Store, hasher Hasher, cache CredentialCache, log *slog.Logger) *Service {
	if cache == nil {
		cache = noCache{}
	}
	return &Service{store: store, hasher: hasher, cache: cache, views: noViews{}, log: log}
}

// WithViews has every grant tell views (see Views).
func (s *Service) WithViews(views Views) *Service {
	s.views = views
	return s
}

// CreateIfNotExists registers username with password, or, when the user
// exists, checks the password (ErrInvalidCredentials when it is wrong).
// Concurrent first logins of one name create exactly one user: the losers
// of the insert race check their password against the winner's hash.
func (s *Service) CreateIfNotExists(ctx context.Context, username, password string) (userID string, created bool, err error) {
	if username, err = NormalizeUsername(username); err != nil {
		return "", false, err
	}
	if err := ValidatePassword(password); err != nil {
		return "", false, err
	}
	if id, ok := s.cache.Get(username, password); ok {
		return id, false, nil
	}
	// Look first, so that an existing user costs one bcrypt comparison and
	// no hashing.
	u, err := s.store.UserByName(ctx, username)
	if err == nil {
		id, err := s.check(ctx, u, password)
		return id, false, err
	}
	if !errors.Is(err, ErrUnknownUser) {
		return "", false, err
	}
	// A new name must keep the registration rule; existing ones (found
	// above) log in under the rule they were registered with.
	if err := ValidateNewUsername(username); err != nil {
		return "", false, err
	}

	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return "", false, fmt.Errorf("hash password: %w", err)
	}
	u = User{ID: uuid.NewString(), Username: username, PasswordHash: hash}
	created, err = s.store.CreateUser(ctx, u)
	if err != nil {
		return "", false, err
	}
	if created {
		s.cache.Put(username, password, u.ID)
		s.log.InfoContext(ctx, "user registered", "user_id", u.ID)
		return u.ID, true, nil
	}
	// Someone registered the name between our look-up and our insert.
	u, err = s.store.UserByName(ctx, username)
	if err != nil {
		return "", false, fmt.Errorf("load user after insert conflict: %w", err)
	}
	id, err := s.check(ctx, u, password)
	return id, false, err
}

// GetInventory lists a user's items ordered by name.
func (s *Service) GetInventory(ctx context.Context, userID string) ([]InventoryItem, error) {
	id, ok := canonicalUUID(userID)
	if !ok {
		return nil, ErrInvalidUserID
	}
	return s.store.Inventory(ctx, id)
}

// GrantItem gives one item to a user for an order, once per order id: a
// replay returns false and changes nothing.
func (s *Service) GrantItem(ctx context.Context, g Grant) (bool, error) {
	var ok bool
	if g.UserID, ok = canonicalUUID(g.UserID); !ok {
		return false, ErrInvalidUserID
	}
	if err := validateItem(g.Item); err != nil {
		return false, err
	}
	if g.OrderID, ok = canonicalUUID(g.OrderID); !ok {
		return false, ErrInvalidOrderID
	}
	c, err := s.views.Begin(ctx, g.UserID)
	defer func() {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := s.views.End(ectx, c); err != nil {
			s.log.WarnContext(ctx, "view cache: a grant's end was not recorded; its lease keeps the view uncached until it runs out", "error", err)
		}
	}()
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrViewsUnavailable, err)
	}
	if by := c.CommitBy(); !by.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, by)
		defer cancel()
	}
	return s.store.Grant(ctx, g)
}

func (s *Service) check(ctx context.Context, u User, password string) (string, error) {
	ok, err := s.hasher.Matches(ctx, u.PasswordHash, password)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", ErrInvalidCredentials
	}
	s.cache.Put(u.Username, password, u.ID)
	return u.ID, nil
}

type noCache struct{}

func (noCache) Get(string, string) (string, bool) { return "", false }
func (noCache) Put(string, string, string)        {}

type noViews struct{}

func (noViews) Begin(context.Context, ...string) (viewcache.Change, error) {
	return viewcache.Change{}, nil
}
func (noViews) End(context.Context, viewcache.Change) error { return nil }
