package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/merchshop/merchshop/services/user/internal/adapters/credcache"
	"github.com/merchshop/merchshop/services/user/internal/app"
)

// countingHasher is a fake bcrypt: "hash:" + password, counting calls.
type countingHasher struct {
	mu              sync.Mutex
	hashes, matches int
}

func (h *countingHasher) Hash(_ context.Context, pw string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hashes++
	return "hash:" + pw, nil
}

func (h *countingHasher) Matches(_ context.Context, hash, pw string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.matches++
	return hash == "hash:"+pw, nil
}

func (h *countingHasher) counts() (int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hashes, h.matches
}

// memStore is an in-memory app.Store for the use-case rules.
type memStore struct {
	mu    sync.Mutex
	users map[string]app.User
}

func newMemStore() *memStore { return &memStore{users: map[string]app.User{}} }

func (s *memStore) UserByName(_ context.Context, name string) (app.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return app.User{}, app.ErrUnknownUser
	}
	return u, nil
}

func (s *memStore) CreateUser(_ context.Context, u app.User) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.Username]; ok {
		return false, nil
	}
	s.users[u.Username] = u
	return true, nil
}

func (s *memStore) Inventory(context.Context, string) ([]app.InventoryItem, error) {
	return nil, errors.New("not used")
}

func (s *memStore) Grant(context.Context, app.Grant) (bool, error) {
	return false, errors.New("not used")
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestCacheHitSkipsBcrypt(t *testing.T) {
	ctx := context.Background()
	h := &countingHasher{}
	svc := app.New(newMemStore(), h, credcache.New(100, time.Minute, nil), quietLog())

	id, created, err := svc.CreateIfNotExists(ctx, "alice", "pw")
	if err != nil || !created || id == "" {
		t.Fatalf("first login: id %q created %v err %v", id, created, err)
	}
	if hashes, matches := h.counts(); hashes != 1 || matches != 0 {
		t.Fatalf("registration: %d hashes %d compares, want 1 and 0", hashes, matches)
	}

	for range 5 {
		id2, created, err := svc.CreateIfNotExists(ctx, "alice", "pw")
		if err != nil || created || id2 != id {
			t.Fatalf("repeat login: id %q created %v err %v", id2, created, err)
		}
	}
	if hashes, matches := h.counts(); hashes != 1 || matches != 0 {
		t.Fatalf("cached logins paid bcrypt: %d hashes %d compares, want 1 and 0", hashes, matches)
	}

	// A wrong password is never answered from the cache.
	if _, _, err := svc.CreateIfNotExists(ctx, "alice", "wrong"); !errors.Is(err, app.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v, want ErrInvalidCredentials", err)
	}
	if _, matches := h.counts(); matches != 1 {
		t.Fatalf("wrong password compared %d times, want 1", matches)
	}
}

func TestWithoutCacheExistingUserComparesOnce(t *testing.T) {
	ctx := context.Background()
	h := &countingHasher{}
	svc := app.New(newMemStore(), h, nil, quietLog())
	if _, _, err := svc.CreateIfNotExists(ctx, "bob", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, created, err := svc.CreateIfNotExists(ctx, "bob", "pw"); err != nil || created {
		t.Fatalf("second login: created %v err %v", created, err)
	}
	// An existing user is looked up first: one comparison, no second hash.
	if hashes, matches := h.counts(); hashes != 1 || matches != 1 {
		t.Fatalf("%d hashes %d compares, want 1 and 1", hashes, matches)
	}
}

// busyOnce is a hasher whose pool is full for its first call.
type busyOnce struct {
	countingHasher
	calls  int
	hashes []string // compared against
}

func (h *busyOnce) Hash(ctx context.Context, pw string) (string, error) {
	h.mu.Lock()
	h.calls++
	first := h.calls == 1
	h.mu.Unlock()
	if first {
		return "", fmt.Errorf("bcrypt: %w", app.ErrBusy)
	}
	return h.countingHasher.Hash(ctx, pw)
}

func (h *busyOnce) Matches(ctx context.Context, hash, pw string) (bool, error) {
	h.mu.Lock()
	h.hashes = append(h.hashes, hash)
	h.mu.Unlock()
	return h.countingHasher.Matches(ctx, hash, pw)
}

// A full bcrypt pool refuses a first login with ErrBusy and registers
// nothing: the next attempt registers the user, once.
func TestBusyPool(t *testing.T) {
	ctx := context.Background()
	h := &busyOnce{}
	store := newMemStore()
	svc := app.New(store, h, nil, quietLog())
	if _, _, err := svc.CreateIfNotExists(ctx, "nobody", "pw"); !errors.Is(err, app.ErrBusy) {
		t.Fatalf("pool full: %v, want ErrBusy", err)
	}
	if _, err := store.UserByName(ctx, "nobody"); !errors.Is(err, app.ErrUnknownUser) {
		t.Fatalf("a refused first login left a user behind: %v", err)
	}
	id, created, err := svc.CreateIfNotExists(ctx, "nobody", "pw")
	if err != nil || !created || id == "" {
		t.Fatalf("pool free again: id %q created %v err %v", id, created, err)
	}
	if _, created, err := svc.CreateIfNotExists(ctx, "nobody", "pw"); err != nil || created {
		t.Fatalf("repeat login: created %v err %v", created, err)
	}
	if len(h.hashes) != 1 || h.hashes[0] == "" {
		t.Fatalf("compared against %q, want the one stored hash", h.hashes)
	}
}

func TestInvalidInputNeverReachesTheStore(t *testing.T) {
	ctx := context.Background()
	svc := app.New(nil, &countingHasher{}, nil, quietLog()) // a nil store panics if touched
	if _, _, err := svc.CreateIfNotExists(ctx, "", "pw"); !errors.Is(err, app.ErrInvalidUsername) {
		t.Errorf("empty username: %v", err)
	}
	if _, _, err := svc.CreateIfNotExists(ctx, "alice", ""); !errors.Is(err, app.ErrInvalidPassword) {
		t.Errorf("empty password: %v", err)
	}
	if _, _, err := svc.CreateIfNotExists(ctx, "a b", "pw"); !errors.Is(err, app.ErrInvalidUsername) {
		t.Errorf("spaced username: %v", err)
	}
	if _, _, err := svc.CreateIfNotExists(ctx, strings.Repeat("x", 65), "pw"); !errors.Is(err, app.ErrInvalidUsername) {
		t.Errorf("long username: %v", err)
	}
	if _, err := svc.GetInventory(ctx, "nope"); !errors.Is(err, app.ErrInvalidUserID) {
		t.Errorf("bad user id: %v", err)
	}
	uid, oid := "6f9619ff-8b86-d011-b42d-00c04fc964ff", "7f9619ff-8b86-d011-b42d-00c04fc964ff"
	if _, err := svc.GrantItem(ctx, app.Grant{UserID: uid, OrderID: oid}); !errors.Is(err, app.ErrInvalidItem) {
		t.Errorf("empty item: %v", err)
	}
	if _, err := svc.GrantItem(ctx, app.Grant{UserID: uid, OrderID: "x", Item: "cup"}); !errors.Is(err, app.ErrInvalidOrderID) {
		t.Errorf("bad order id: %v", err)
	}
	if _, err := svc.GrantItem(ctx, app.Grant{UserID: "x", OrderID: oid, Item: "cup"}); !errors.Is(err, app.ErrInvalidUserID) {
		t.Errorf("bad user id: %v", err)
	}
}
