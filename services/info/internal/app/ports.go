package app

import (
	"context"
	"time"
)

// CounterpartTotal is the total amount exchanged with one counterpart.
type CounterpartTotal struct {
	Username string
	Amount   int64
}

// InventoryItem is an item type the user owns and how many.
type InventoryItem struct {
	Item     string
	Quantity int64
}

// Coins is the part of the coins service GetInfo uses. Errors wrap
// ErrNotFound for an unknown account.
type Coins interface {
	// GetOverview returns the balance and the transfers per counterpart,
	// read from one snapshot.
	GetOverview(ctx context.Context, userID string) (balance int64, received, sent []CounterpartTotal, err error)
}

// Users is the part of the user service GetInfo uses.
type Users interface {
	GetInventory(ctx context.Context, userID string) ([]InventoryItem, error)
}

// Entry kinds of the history read model.
const (
	KindTransferIn  = "transfer_in"
	KindTransferOut = "transfer_out"
	KindPurchase    = "purchase"
	KindGrant       = "grant"
	KindCredit      = "credit"
)

// Entry is one line of a user's itemised history: Amount is the signed
// change of the user's balance in whole coins.
type Entry struct {
	UserID        string
	TransactionID string
	Kind          string
	Counterpart   string
	Amount        int64
	// CreatedAt has millisecond precision.
	CreatedAt time.Time
}

// HistoryReader pages through the read model.
type HistoryReader interface {
	// Page returns up to limit entries of the user, newest first (by time,
	// then transaction id, both descending), strictly after the cursor when
	// one is given.
	Page(ctx context.Context, userID string, after *Cursor, limit int) ([]Entry, error)
}
