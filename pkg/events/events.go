// Package events defines the Kafka topics and the JSON payloads the services
// exchange. Every event carries an event id that consumers deduplicate on.
package events

import "time"

// Topics. Partition counts are set where topics are created (scripts/infra
// and the Helm chart).
const (
	TopicUserCreated  = "user.created"
	TopicTransactions = "coins.transactions"
	TopicPurchases    = "merch.purchases"
)

// UserCreated is published by the user service when a user registers.
type UserCreated struct {
	EventID   string    `json:"event_id"`
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
}

// Transaction kinds.
const (
	KindTransfer = "transfer"
	KindPurchase = "purchase"
	KindGrant    = "grant"
	KindCredit   = "credit"
)

// Transaction is published by the coins service for every ledger
// transaction. From is empty for grants and credits, To is empty for
// purchases. Amount is in whole coins.
type Transaction struct {
	EventID       string    `json:"event_id"`
	TransactionID string    `json:"transaction_id"`
	Kind          string    `json:"kind"`
	FromUserID    string    `json:"from_user_id,omitempty"`
	FromUsername  string    `json:"from_username,omitempty"`
	ToUserID      string    `json:"to_user_id,omitempty"`
	ToUsername    string    `json:"to_username,omitempty"`
	Amount        int64     `json:"amount"`
	Reason        string    `json:"reason,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// PurchaseCompleted is published by the merch service when an order is
// paid and its item granted.
type PurchaseCompleted struct {
	EventID   string    `json:"event_id"`
	OrderID   string    `json:"order_id"`
	UserID    string    `json:"user_id"`
	Item      string    `json:"item"`
	Price     int64     `json:"price"`
	CreatedAt time.Time `json:"created_at"`
}
