// Package testdb gives integration tests a fresh schema in the real coins
// test database (COINS_TEST_DATABASE_URL) with the service's migrations.
package testdb

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/pkg/postgres/pgtest"

	"github.com/merchshop/merchshop/services/coins/migrations"
)

// EnvDSN names the test database.
const EnvDSN = "COINS_TEST_DATABASE_URL"

// Pool returns a pool on a migrated schema of its own, dropped at cleanup;
// the test skips when the database is not configured.
func Pool(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	return pgtest.Migrated(t, EnvDSN, maxConns, migrations.FS, ".")
}
