// Package app holds the user service's use cases: registration on first
// login, credential checks, inventories and idempotent item grants.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	// CreateUser inserts u and its user-created event in one transaction.
	// It returns false, and changes nothing, when the username is taken.
	CreateUser(ctx context.Context, u User) (bool, error)
	// Inventory lists a user's items ordered by item name.
	Inventory(ctx context.Context, userID string) ([]InventoryItem, error)
	// Grant records the order and adds the item in one transaction. It
	// returns false when the order was granted before (a replay),
	// ErrOrderConflict when that earlier grant was for another user or item,
	// and ErrUnknownUser when the user does not exist.
	Grant(ctx context.Context, g Grant) (bool, error)
	// Grants returns the grants recorded for these (canonical) order ids,
	// by order id; orders never granted are absent.
	Grants(ctx context.Context, orderIDs []string) (map[string]Grant, error)
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

// Notifier is told after a commit that wrote outbox events (the relay).
type Notifier interface {
	Notify()
}

// Service implements the use cases.
type Service struct {
	store  Store
	hasher Hasher
	cache  CredentialCache
	notify Notifier
	views  Views
	log    *slog.Logger

	dummyMu   sync.Mutex
	dummyHash string
}

// New returns the service. cache and notify may be nil.
func New(store Store, hasher Hasher, cache CredentialCache, notify Notifier, log *slog.Logger) *Service {
	if cache == nil {
		cache = noCache{}
	}
	if notify == nil {
		notify = noNotify{}
	}
	return &Service{store: store, hasher: hasher, cache: cache, notify: notify, views: noViews{}, log: log}
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
		s.notify.Notify()
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

// VerifyCredentials returns the id of the user whose password this is, or
// ErrInvalidCredentials for a wrong password and an unknown user alike.
func (s *Service) VerifyCredentials(ctx context.Context, username, password string) (string, error) {
	username, err := NormalizeUsername(username)
	if err != nil {
		return "", err
	}
	if err := ValidatePassword(password); err != nil {
		return "", err
	}
	if id, ok := s.cache.Get(username, password); ok {
		return id, nil
	}
	u, err := s.store.UserByName(ctx, username)
	if errors.Is(err, ErrUnknownUser) {
		// Spend the time a real comparison takes, so that the answer's
		// timing does not tell whether the user exists (nor does a busy
		// pool: it refuses both alike).
		dummy, err := s.dummy(ctx)
		if err != nil {
			return "", err
		}
		if _, err := s.hasher.Matches(ctx, dummy, password); err != nil {
			return "", err
		}
		return "", ErrInvalidCredentials
	}
	if err != nil {
		return "", err
	}
	return s.check(ctx, u, password)
}

// GetUserByName resolves a username (ErrUnknownUser when unknown).
func (s *Service) GetUserByName(ctx context.Context, username string) (User, error) {
	username, err := NormalizeUsername(username)
	if err != nil {
		return User{}, err
	}
	u, err := s.store.UserByName(ctx, username)
	if err != nil {
		return User{}, err
	}
	u.PasswordHash = ""
	return u, nil
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

// GrantedBefore reports, for each grant, whether exactly that grant (same
// order, user and item) is recorded already, with one query for them all.
// Grants are never removed, so a true answer is final and the grant needs
// no transaction; anything else (a new order, a conflicting earlier grant,
// malformed ids) is false and left to GrantItem, which decides it.
func (s *Service) GrantedBefore(ctx context.Context, gs []Grant) ([]bool, error) {
	done := make([]bool, len(gs))
	ids := make([]string, 0, len(gs))
	canon := make([]Grant, len(gs))
	for i, g := range gs {
		var okOrder, okUser bool
		canon[i].OrderID, okOrder = canonicalUUID(g.OrderID)
		canon[i].UserID, okUser = canonicalUUID(g.UserID)
		canon[i].Item = g.Item
		if okOrder && okUser {
			ids = append(ids, canon[i].OrderID)
		}
	}
	if len(ids) == 0 {
		return done, nil
	}
	recorded, err := s.store.Grants(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i, g := range canon {
		if r, ok := recorded[g.OrderID]; ok && r.UserID == g.UserID && r.Item == g.Item {
			done[i] = true
		}
	}
	return done, nil
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

// dummy returns a hash to compare against for unknown users, made on
// first use (again after a failure: a busy pool must not leave it empty,
// which would make unknown users answer faster).
func (s *Service) dummy(ctx context.Context) (string, error) {
	s.dummyMu.Lock()
	defer s.dummyMu.Unlock()
	if s.dummyHash == "" {
		h, err := s.hasher.Hash(ctx, "not a real password")
		if err != nil {
			return "", fmt.Errorf("dummy hash: %w", err)
		}
		s.dummyHash = h
	}
	return s.dummyHash, nil
}

type noCache struct{}

func (noCache) Get(string, string) (string, bool) { return "", false }
func (noCache) Put(string, string, string)        {}

type noViews struct{}

func (noViews) Begin(context.Context, ...string) (viewcache.Change, error) {
	return viewcache.Change{}, nil
}
func (noViews) End(context.Context, viewcache.Change) error { return nil }

type noNotify struct{}

func (noNotify) Notify() {}
