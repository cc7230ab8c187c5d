package app

import (
	"context"
	"time"
)

// Item is a catalog entry; Price is in whole coins.
type Item struct {
	Name  string
	Price int64
}

// Status is where an order's saga stands.
type Status string

// Order statuses.
const (
	StatusPending   Status = "pending"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
)

// Order is one purchase saga.
type Order struct {
	ID             string
	UserID         string
	Item           string
	Price          int64
	IdempotencyKey string
	Status         Status
	// Failure is the text of the error a failed order ended with.
	Failure   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Store keeps the catalog and the orders. PostgreSQL implements it locally,
// YDB in production (MERCH_STORE). Every method is safe to call from several
// replicas at once.
type Store interface {
	// ListItems returns the catalog ordered by name.
	ListItems(ctx context.Context) ([]Item, error)
	// GetItem returns one item, or ErrUnknownItem.
	GetItem(ctx context.Context, name string) (Item, error)
	// CreateOrder inserts o as pending unless the user already has an order
	// with o's idempotency key; then it returns that order and created=false.
	CreateOrder(ctx context.Context, o Order) (got Order, created bool, err error)
	// FailOrder marks a pending order failed with the failure text and
	// returns the order as it now stands (unchanged if it was not pending).
	FailOrder(ctx context.Context, id, failure string) (Order, error)
	// CompleteOrder marks the order completed, also over a failure a
	// concurrent driver recorded (the charge and the grant happened), and
	// returns the order as it now stands. Completing a completed order
	// changes nothing.
	CompleteOrder(ctx context.Context, id string) (Order, error)
	// ClaimPending returns up to limit pending orders last touched more than
	// olderThan ago and marks them touched now, so that another replica's
	// recovery skips them for olderThan.
	ClaimPending(ctx context.Context, olderThan time.Duration, limit int) ([]Order, error)
}

// Coins is the part of the coins service the saga uses. Errors wrap
// ErrInsufficientFunds, ErrAccountNotFound, ErrTransient or ErrRejected.
type Coins interface {
	// Charge takes amount whole coins from the user, once per key. A key
	// has one outcome: a repeated call returns the first one, a refusal for
	// insufficient funds included (coins records it under the key), so once
	// a charge was refused no later call with the key can pay, whatever the
	// balance has become. The saga relies on that to fail an order on a
	// refusal while another driver may be charging the same order.
	Charge(ctx context.Context, userID string, amount int64, key, reason string) error
	// Credit gives amount whole coins to the user, once per key.
	Credit(ctx context.Context, userID string, amount int64, key, reason string) error
}

// Users is the part of the user service the saga uses. Errors wrap
// ErrTransient or ErrRejected.
type Users interface {
	// GrantItem adds the item to the user's inventory, once per order id.
	GrantItem(ctx context.Context, userID, item, orderID string) error
}
