// Package testdb gives integration tests a migrated schema of their own in
// the real test database (USER_TEST_DATABASE_URL).
package testdb

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/pkg/postgres"
	"github.com/merchshop/merchshop/pkg/postgres/pgtest"
	"github.com/merchshop/merchshop/services/user/migrations"
)

// Env names the test database's DSN.
const Env = "USER_TEST_DATABASE_URL"

// Pool returns a pool on a fresh, migrated schema (skips when the test
// database is not configured).
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t, Env, 30)
	ctx := context.Background()
	if err := outbox.Migrate(ctx, pool); err != nil {
		t.Fatalf("outbox migrations: %v", err)
	}
	if err := postgres.Migrate(ctx, pool, migrations.FS, ".", "schema_version"); err != nil {
		t.Fatalf("migrations: %v", err)
	}
	return pool
}
