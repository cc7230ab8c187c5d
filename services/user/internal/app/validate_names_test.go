package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/merchshop/merchshop/pkg/username"
	"github.com/merchshop/merchshop/services/user/internal/app"
)

func TestRefusedNewNameWritesNothing(t *testing.T) {
	ctx := context.Background()
	store, h := newMemStore(), &countingHasher{}
	svc := app.New(store, h, nil, quietLog())
	for name, rule := range map[string]error{
		"\u0430lice":      username.ErrMixedScripts, // Cyrillic а
		"party\U0001f389": username.ErrDisallowed,
		"\uff41lice":      username.ErrWidth,
	} {
		_, _, err := svc.CreateIfNotExists(ctx, name, "pw")
		if !errors.Is(err, app.ErrInvalidUsername) || !errors.Is(err, rule) {
			t.Errorf("register %q: %v, want %v", name, err, rule)
		}
	}
	if n := len(store.users); n != 0 {
		t.Errorf("refused names left %d users", n)
	}
	if hashes, _ := h.counts(); hashes != 0 {
		t.Errorf("refused names cost %d bcrypt hashes", hashes)
	}
}

func TestStoredNameTheNewRuleRefusesStillLogsIn(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	// Registered before the rule: a Latin name with a Cyrillic а, and an
	// emoji name.
	for _, u := range []app.User{
		{ID: "0d5b7a4e-1111-4c3b-9a57-000000000001", Username: "\u0430lice", PasswordHash: "hash:old"},
		{ID: "0d5b7a4e-1111-4c3b-9a57-000000000002", Username: "party\U0001f389", PasswordHash: "hash:old"},
	} {
		store.users[u.Username] = u
		svc := app.New(store, &countingHasher{}, nil, quietLog())
		id, created, err := svc.CreateIfNotExists(ctx, u.Username, "old")
		if err != nil || created || id != u.ID {
			t.Errorf("login of stored %q: %q, %v, %v; want %q", u.Username, id, created, err, u.ID)
		}
		if _, _, err := svc.CreateIfNotExists(ctx, u.Username, "wrong"); !errors.Is(err, app.ErrInvalidCredentials) {
			t.Errorf("wrong password for stored %q: %v", u.Username, err)
		}
	}
}

func TestComposedAndDecomposedNamesAreOneUser(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	svc := app.New(store, &countingHasher{}, nil, quietLog())
	decomposed, composed := "Rene\u0301e", "Ren\u00e9e"
	id, created, err := svc.CreateIfNotExists(ctx, decomposed, "pw")
	if err != nil || !created {
		t.Fatalf("register decomposed: %v, %v", created, err)
	}
	if _, ok := store.users[composed]; !ok || len(store.users) != 1 {
		t.Fatalf("stored %v, want the one NFC name %q", store.users, composed)
	}
	again, created, err := svc.CreateIfNotExists(ctx, composed, "pw")
	if err != nil || created || again != id {
		t.Fatalf("login composed: %q, %v, %v; want %q", again, created, err, id)
	}
	if v, created, err := svc.CreateIfNotExists(ctx, decomposed, "pw"); err != nil || created || v != id {
		t.Fatalf("login decomposed again: %q, %v, %v", v, created, err)
	}
}
