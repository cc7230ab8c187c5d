// Package postgres is the user service's PostgreSQL store.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/services/user/internal/app"
)

// Store implements app.Store.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store on pool (migrated by the caller).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var _ app.Store = (*Store)(nil)

// UserByName implements app.Store.
func (s *Store) UserByName(ctx context.Context, username string) (app.User, error) {
	var u app.User
	err := s.pool.QueryRow(ctx,
		`SELECT id::text, username, password_hash FROM users WHERE username = $1`, username,
	).Scan(&u.ID, &u.Username, &u.PasswordHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return app.User{}, app.ErrUnknownUser
	}
	if err != nil {
		return app.User{}, fmt.Errorf("select user: %w", err)
	}
	return u, nil
}

// CreateUser implements app.Store: one statement, so its own
// transaction and one round trip.
func (s *Store) CreateUser(ctx context.Context, u app.User) (bool, error) {
	tag, err := s.pool.Exec(ctx,
		`INSERT INTO users (id, username, password_hash) VALUES ($1, $2, $3)
		 ON CONFLICT (username) DO NOTHING`,
		u.ID, u.Username, u.PasswordHash)
	if err != nil {
		return false, fmt.Errorf("create user: %w", err)
	}
	// No row: the name is taken.
	return tag.RowsAffected() == 1, nil
}

// Inventory implements app.Store.
func (s *Store) Inventory(ctx context.Context, userID string) ([]app.InventoryItem, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT item, quantity FROM inventory WHERE user_id = $1 ORDER BY item`, userID)
	if err != nil {
		return nil, fmt.Errorf("select inventory: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.InventoryItem, error) {
		var it app.InventoryItem
		err := r.Scan(&it.Item, &it.Quantity)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	if items == nil {
		items = []app.InventoryItem{}
	}
	return items, nil
}

// grantSQL records the grant and, only when its row is new, adds the item:
// one statement, so one round trip and its own transaction. A conflict on
// the order id inserts nothing and reports the earlier grant as the
// statement's snapshot saw it (absent only when that grant committed while
// this statement waited for it; then it is read again).
const grantSQL = `
	WITH g AS (
	    INSERT INTO grants (order_id, user_id, item) VALUES ($1, $2, $3)
	    ON CONFLICT (order_id) DO NOTHING RETURNING user_id, item
	), inv AS (
	    INSERT INTO inventory (user_id, item, quantity) SELECT user_id, item, 1 FROM g
	    ON CONFLICT (user_id, item) DO UPDATE SET quantity = inventory.quantity + 1
	)
	SELECT EXISTS (SELECT 1 FROM g), e.user_id::text, e.item
	  FROM (SELECT 1) one LEFT JOIN grants e ON e.order_id = $1`

// Grant implements app.Store: the grants row keyed by order id makes the
// grant happen once; the inventory changes only when that row is new.
func (s *Store) Grant(ctx context.Context, g app.Grant) (bool, error) {
	var (
		granted      bool
		userID, item *string
	)
	err := s.pool.QueryRow(ctx, grantSQL, g.OrderID, g.UserID, g.Item).Scan(&granted, &userID, &item)
	if isForeignKeyViolation(err) {
		return false, app.ErrUnknownUser
	}
	if err != nil {
		return false, fmt.Errorf("grant: %w", err)
	}
	if granted {
		return true, nil
	}
	if userID == nil {
		var u, it string
		if err := s.pool.QueryRow(ctx, `SELECT user_id::text, item FROM grants WHERE order_id = $1`, g.OrderID).Scan(&u, &it); err != nil {
			return false, fmt.Errorf("select earlier grant: %w", err)
		}
		userID, item = &u, &it
	}
	if *userID != g.UserID || *item != g.Item {
		return false, app.ErrOrderConflict
	}
	return false, nil // a replay
}

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
