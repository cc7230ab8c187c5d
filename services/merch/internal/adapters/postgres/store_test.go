package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	pg "github.com/merchshop/merchshop/pkg/postgres"
	"github.com/merchshop/merchshop/pkg/postgres/pgtest"
	"github.com/merchshop/merchshop/services/merch/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/merch/internal/adapters/storetest"
	"github.com/merchshop/merchshop/services/merch/migrations"
)

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t, "MERCH_TEST_DATABASE_URL", 20)
	ctx := context.Background()
	if err := pg.Migrate(ctx, pool, migrations.FS, ".", "schema_version"); err != nil {
		t.Fatal(err)
	}
	return pool
}

// TestStoreContract runs the store contract shared with the YDB store.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		pool := newPool(t)
		s := postgres.New(pool)
		return storetest.Harness{
			Store: s,
			Order: s.GetOrder,
			Age: func(ctx context.Context, d time.Duration, ids ...string) error {
				_, err := pool.Exec(ctx, `UPDATE orders SET updated_at = now() - make_interval(secs => $1) WHERE id = ANY($2)`,
					d.Seconds(), ids)
				return err
			},
		}
	})
}

// TestOrderConstraints checks what PostgreSQL itself enforces.
func TestOrderConstraints(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	user := uuid.NewString()
	insert := func(id, key, status string, price int64) error {
		_, err := pool.Exec(ctx, `INSERT INTO orders (id, user_id, item, price, idempotency_key, status) VALUES ($1, $2, 'cup', $3, $4, $5)`,
			id, user, price, key, status)
		return err
	}
	if err := insert(uuid.NewString(), "a", "pending", 20); err != nil {
		t.Fatal(err)
	}
	if err := insert(uuid.NewString(), "a", "pending", 20); !pg.IsUniqueViolation(err) {
		t.Fatalf("duplicate key: %v", err)
	}
	if err := insert(uuid.NewString(), "b", "shipped", 20); !pg.IsCheckViolation(err) {
		t.Fatalf("bad status: %v", err)
	}
	if err := insert(uuid.NewString(), "c", "pending", 0); !pg.IsCheckViolation(err) {
		t.Fatalf("zero price: %v", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO items (name, price) VALUES ('free', 0)`); !pg.IsCheckViolation(err) {
		t.Fatalf("free item: %v", err)
	}
}
