package ydb

import (
	"context"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	ydbsdk "github.com/ydb-platform/ydb-go-sdk/v3"
	"github.com/ydb-platform/ydb-go-sdk/v3/query"

	"github.com/merchshop/merchshop/services/merch/internal/adapters/storetest"
)

// openTestDB connects to the YDB named by YDB_ENDPOINT and YDB_DATABASE
// (default /local), or skips.
func openTestDB(t *testing.T) *ydbsdk.Driver {
	t.Helper()
	endpoint := os.Getenv("YDB_ENDPOINT")
	if endpoint == "" {
		t.Skip("YDB_ENDPOINT is not set: the YDB store is tested against a real YDB only (CI runs it with a YDB container)")
	}
	database := os.Getenv("YDB_DATABASE")
	if database == "" {
		database = "/local"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := Open(ctx, endpoint, database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = db.Close(ctx)
	})
	return db
}

// newTestStore creates the store's tables in a directory of their own,
// dropped when the test ends.
func newTestStore(t *testing.T, db *ydbsdk.Driver) *Store {
	t.Helper()
	id := uuid.New()
	cfg := Config{Prefix: "merch_test_" + hex.EncodeToString(id[:8])}
	s, err := New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, table := range Tables() {
			if err := db.Query().Exec(ctx, s.t.yql("DROP TABLE "+table+";")); err != nil && !ydbsdk.IsOperationErrorSchemeError(err) {
				t.Logf("drop table %s/%s: %v", s.Dir(), table, err)
			}
		}
		if err := db.Scheme().RemoveDirectory(ctx, s.Dir()); err != nil {
			t.Logf("remove directory %s: %v", s.Dir(), err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// A second start finds everything in place.
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	return s
}

func TestStoreContract(t *testing.T) {
	db := openTestDB(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s := newTestStore(t, db)
		return storetest.Harness{
			Store: s,
			Order: s.GetOrder,
			Age: func(ctx context.Context, d time.Duration, ids ...string) error {
				return db.Query().Exec(ctx, s.t.yql(`
					DECLARE $ids AS List<Utf8>;
					DECLARE $at AS Timestamp;
					UPDATE orders SET updated_at = $at WHERE id IN $ids;`),
					query.WithParameters(ydbsdk.ParamsBuilder().
						Param("$ids").Any(textList(ids)).
						Param("$at").Timestamp(now().Add(-d)).
						Build()))
			},
		}
	})
}

// The rest needs no server.

func TestDSN(t *testing.T) {
	for _, c := range []struct{ endpoint, database, want string }{
		{"grpc://localhost:2136", "/local", "grpc://localhost:2136/local"},
		{"grpc://localhost:2136/", "local", "grpc://localhost:2136/local"},
		{"localhost:2136", "/local", "grpc://localhost:2136/local"},
		{"grpcs://ydb.example:2135", "/ru-central1/b1g/etn", "grpcs://ydb.example:2135/ru-central1/b1g/etn"},
	} {
		if got := DSN(c.endpoint, c.database); got != c.want {
			t.Errorf("DSN(%q, %q) = %q, want %q", c.endpoint, c.database, got, c.want)
		}
	}
}

func TestTablePrefix(t *testing.T) {
	for _, c := range []struct{ root, prefix, dir, pragma string }{
		{"/local", "", "/local", ""},
		{"/local", "merch", "/local/merch", `PRAGMA TablePathPrefix("/local/merch");` + "\n"},
		{"/local", "/local/merch/", "/local/merch", `PRAGMA TablePathPrefix("/local/merch");` + "\n"},
		{"local", "a/b", "/local/a/b", `PRAGMA TablePathPrefix("/local/a/b");` + "\n"},
	} {
		got, err := tablesFor(c.root, c.prefix)
		if err != nil || got.dir != c.dir || got.pragma != c.pragma {
			t.Errorf("tablesFor(%q, %q) = %+v, %v", c.root, c.prefix, got, err)
		}
	}
	for _, bad := range []string{`a"b`, "a b", "a\\b", "a`b", "x\n"} {
		if _, err := tablesFor("/local", bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
	if got := (tables{pragma: "P;\n"}).yql("SELECT 1;"); got != "P;\nSELECT 1;" {
		t.Errorf("yql = %q", got)
	}
}
