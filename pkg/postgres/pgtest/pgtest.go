// Package pgtest gives each integration test its own empty schema in a real
// PostgreSQL test database, dropped when the test ends.
package pgtest

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/pkg/postgres"
	"github.com/merchshop/merchshop/pkg/testenv"
)

// Pool connects to the database named by the environment variable dsnEnv
// (for example COINS_TEST_DATABASE_URL) with a fresh schema as search_path.
func Pool(t testing.TB, dsnEnv string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	dsn := testenv.Need(t, dsnEnv)
	schema := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin, err := postgres.Connect(ctx, slog.Default(), dsn, 2, 10*time.Second)
	if err != nil {
		t.Fatalf("connect %s: %v", dsnEnv, err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", dsnEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pool, err := postgres.Connect(ctx, slog.Default(), u.String(), maxConns, 10*time.Second)
	if err != nil {
		t.Fatalf("connect schema %s: %v", schema, err)
	}
	t.Cleanup(pool.Close)
	var got string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&got); err != nil || got != schema {
		t.Fatalf("search_path not applied: got %q, err %v", got, err)
	}
	return pool
}

// DSN is a helper for tests that start a process: it returns the DSN with
// the schema of pool as search_path.
func DSN(t testing.TB, dsnEnv string, pool *pgxpool.Pool) string {
	t.Helper()
	var schema string
	if err := pool.QueryRow(context.Background(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatalf("current schema: %v", err)
	}
	u, err := url.Parse(testenv.Need(t, dsnEnv))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return fmt.Sprint(u)
}

// Migrated is Pool with the outbox tables and a service's migrations (dir
// of fsys) applied, as the service applies them at start.
func Migrated(t testing.TB, dsnEnv string, maxConns int32, fsys fs.FS, dir string) *pgxpool.Pool {
	t.Helper()
	pool := Pool(t, dsnEnv, maxConns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := outbox.Migrate(ctx, pool); err != nil {
		t.Fatalf("outbox migrations: %v", err)
	}
	if err := postgres.Migrate(ctx, pool, fsys, dir, "schema_version"); err != nil {
		t.Fatalf("migrations: %v", err)
	}
	return pool
}
