// Package postgres is the merch service's PostgreSQL store: the catalog and
// the orders.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/services/merch/internal/app"
)

// Store implements app.Store.
type Store struct {
	pool *pgxpool.Pool
}

var _ app.Store = (*Store)(nil)

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

const orderColumns = `id::text, user_id::text, item, price, idempotency_key, status, COALESCE(failure, ''), created_at, updated_at`

func scanOrder(row pgx.Row) (app.Order, error) {
	var o app.Order
	var status string
	err := row.Scan(&o.ID, &o.UserID, &o.Item, &o.Price, &o.IdempotencyKey, &status, &o.Failure, &o.CreatedAt, &o.UpdatedAt)
	o.Status = app.Status(status)
	return o, err
}

// ListItems implements app.Store.
func (s *Store) ListItems(ctx context.Context) ([]app.Item, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, price FROM items ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Item, error) {
		var it app.Item
		err := r.Scan(&it.Name, &it.Price)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	return items, nil
}

// GetItem implements app.Store.
func (s *Store) GetItem(ctx context.Context, name string) (app.Item, error) {
	it := app.Item{}
	err := s.pool.QueryRow(ctx, `SELECT name, price FROM items WHERE name = $1`, name).Scan(&it.Name, &it.Price)
	if errors.Is(err, pgx.ErrNoRows) {
		return app.Item{}, app.ErrUnknownItem
	}
	if err != nil {
		return app.Item{}, fmt.Errorf("get item: %w", err)
	}
	return it, nil
}

// CreateOrder implements app.Store. Two requests with the same key race on
// the unique (user_id, idempotency_key) index: the loser's INSERT waits for
// the winner to commit, does nothing, and the SELECT that follows (a new
// snapshot) reads the winner's order.
func (s *Store) CreateOrder(ctx context.Context, o app.Order) (app.Order, bool, error) {
	got, err := scanOrder(s.pool.QueryRow(ctx, `
		INSERT INTO orders (id, user_id, item, price, idempotency_key, status)
		VALUES ($1, $2, $3, $4, $5, 'pending')
		ON CONFLICT (user_id, idempotency_key) DO NOTHING
		RETURNING `+orderColumns,
		o.ID, o.UserID, o.Item, o.Price, o.IdempotencyKey))
	if err == nil {
		return got, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return app.Order{}, false, fmt.Errorf("insert order: %w", err)
	}
	got, err = scanOrder(s.pool.QueryRow(ctx,
		`SELECT `+orderColumns+` FROM orders WHERE user_id = $1 AND idempotency_key = $2`,
		o.UserID, o.IdempotencyKey))
	if err != nil {
		return app.Order{}, false, fmt.Errorf("load order by key: %w", err)
	}
	return got, false, nil
}

func (s *Store) order(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id string) (app.Order, error) {
	o, err := scanOrder(q.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1`, id))
	if err != nil {
		return app.Order{}, fmt.Errorf("load order %s: %w", id, err)
	}
	return o, nil
}

// GetOrder returns one order (used by tests and tools).
func (s *Store) GetOrder(ctx context.Context, id string) (app.Order, error) {
	return s.order(ctx, s.pool, id)
}

// FailOrder implements app.Store.
func (s *Store) FailOrder(ctx context.Context, id, failure string) (app.Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `
		UPDATE orders SET status = 'failed', failure = $2, updated_at = now()
		WHERE id = $1 AND status = 'pending'
		RETURNING `+orderColumns, id, failure))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.order(ctx, s.pool, id)
	}
	if err != nil {
		return app.Order{}, fmt.Errorf("fail order %s: %w", id, err)
	}
	return o, nil
}

// CompleteOrder implements app.Store. Completion also wins over a failure
// recorded by a concurrent driver: the ledger shows the charge and the
// inventory the item, so completed is the truth.
func (s *Store) CompleteOrder(ctx context.Context, id string) (app.Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `
		UPDATE orders SET status = 'completed', failure = NULL, updated_at = now()
		WHERE id = $1 AND status <> 'completed'
		RETURNING `+orderColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		// Completed before (or no such order): report it as it stands.
		return s.order(ctx, s.pool, id)
	}
	if err != nil {
		return app.Order{}, fmt.Errorf("complete order %s: %w", id, err)
	}
	return o, nil
}

// ClaimPending implements app.Store. SKIP LOCKED lets replicas claim
// disjoint batches; bumping updated_at is the claim's lease, so the other
// replicas leave these orders alone for olderThan while this one drives them
// outside any transaction.
func (s *Store) ClaimPending(ctx context.Context, olderThan time.Duration, limit int) ([]app.Order, error) {
	rows, err := s.pool.Query(ctx, `
		UPDATE orders SET updated_at = now()
		WHERE id IN (
			SELECT id FROM orders
			WHERE status = 'pending' AND updated_at < now() - make_interval(secs => $1)
			ORDER BY updated_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		AND status = 'pending'
		RETURNING `+orderColumns, olderThan.Seconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim pending orders: %w", err)
	}
	orders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Order, error) { return scanOrder(r) })
	if err != nil {
		return nil, fmt.Errorf("claim pending orders: %w", err)
	}
	return orders, nil
}
