// Package testdb gives integration tests a fresh schema in the real coins
// test database (COINS_TEST_DATABASE_URL) with the service's migrations.
package testdb

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/pkg/postgres"
	"github.com/merchshop/merchshop/pkg/postgres/pgtest"

	"github.com/merchshop/merchshop/services/coins/migrations"
)

// EnvDSN names the test database.
const EnvDSN = "COINS_TEST_DATABASE_URL"

// Pool returns a pool on a migrated schema of its own, dropped at cleanup;
// the test skips when the database is not configured.
func Pool(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t, EnvDSN, maxConns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := outbox.Migrate(ctx, pool); err != nil {
		t.Fatalf("outbox migrations: %v", err)
	}
	if err := postgres.Migrate(ctx, pool, migrations.FS, ".", "schema_version"); err != nil {
		t.Fatalf("coins migrations: %v", err)
	}
	return pool
}
