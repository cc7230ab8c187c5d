package app_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/services/user/internal/adapters/bcrypt"
	"github.com/merchshop/merchshop/services/user/internal/adapters/credcache"
	"github.com/merchshop/merchshop/services/user/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/user/internal/app"
	"github.com/merchshop/merchshop/services/user/internal/testdb"
)

// Login benchmarks against the real PostgreSQL test database and real
// bcrypt at the production cost (USER_BCRYPT_COST, default 10, as in
// cmd/user), so the numbers are what a login costs the user service:
//
//	go test -run x -bench Login -benchtime 200x ./internal/app/
//
// First logins are bcrypt-bound by design; repeated logins are answered by
// the verified-credential cache without bcrypt, or, with the cache off,
// pay one bcrypt comparison each.

func benchCost(b *testing.B) int {
	b.Helper()
	cost := 10
	if v := os.Getenv("USER_BCRYPT_COST"); v != "" {
		c, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("USER_BCRYPT_COST=%q: %v", v, err)
		}
		cost = c
	}
	return cost
}

// benchService wires the use cases to a fresh schema; cache may be nil.
func benchService(b *testing.B, cache app.CredentialCache) *app.Service {
	b.Helper()
	h, err := bcrypt.New(bcrypt.Config{Cost: benchCost(b)})
	if err != nil {
		b.Fatal(err)
	}
	return app.New(postgres.New(testdb.Pool(b)), h, cache, quietLog())
}

// BenchmarkLoginFirst: every login registers a new user (one bcrypt hash
// plus the insert with its outbox event).
func BenchmarkLoginFirst(b *testing.B) {
	svc := benchService(b, credcache.New(100_000, 10*time.Minute, nil))
	ctx := context.Background()
	run := uuid.NewString()[:8]
	for i := 0; b.Loop(); i++ {
		_, created, err := svc.CreateIfNotExists(ctx, fmt.Sprintf("first-%s-%d", run, i), "password-1")
		if err != nil || !created {
			b.Fatalf("login %d: created=%v err=%v", i, created, err)
		}
	}
	b.ReportMetric(float64(benchCost(b)), "bcrypt-cost")
}

// repeatLogins logs one existing user in again and again.
func repeatLogins(b *testing.B, cache app.CredentialCache) {
	svc := benchService(b, cache)
	ctx := context.Background()
	id, created, err := svc.CreateIfNotExists(ctx, "repeat", "password-1")
	if err != nil || !created {
		b.Fatalf("register: created=%v err=%v", created, err)
	}
	for b.Loop() {
		got, created, err := svc.CreateIfNotExists(ctx, "repeat", "password-1")
		if err != nil || created || got != id {
			b.Fatalf("repeat login: id=%s created=%v err=%v", got, created, err)
		}
	}
}

// BenchmarkLoginRepeatCached: an existing user, answered by the cache (the
// registration above put the credentials in it).
func BenchmarkLoginRepeatCached(b *testing.B) {
	cache := credcache.New(100_000, 10*time.Minute, nil)
	repeatLogins(b, cache)
	if cache.Len() != 1 {
		b.Fatalf("cache has %d entries, want 1", cache.Len())
	}
}

// BenchmarkLoginRepeatUncached: an existing user with the cache disabled:
// a look-up by name and one bcrypt comparison per login.
func BenchmarkLoginRepeatUncached(b *testing.B) {
	repeatLogins(b, nil)
}
