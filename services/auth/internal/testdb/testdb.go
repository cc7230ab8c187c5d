// Package testdb gives integration tests a migrated schema of their own in
// the real test database (AUTH_TEST_DATABASE_URL).
package testdb

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/pkg/postgres/pgtest"
	"github.com/merchshop/merchshop/services/auth/migrations"
)

// Env names the test database's DSN.
const Env = "AUTH_TEST_DATABASE_URL"

// Pool returns a pool on a fresh, migrated schema (skips when the test
// database is not configured).
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return pgtest.Migrated(t, Env, 20, migrations.FS, ".")
}
