// Package events defines the Kafka topic and the JSON payload of the one
// event stream: the coins ledger's transactions, which feed the ClickHouse
// history. Every event carries an event id that consumers deduplicate on.
// Accounts are opened and items granted by direct, idempotent calls (auth ->
// coins.OpenAccount, the purchase saga -> user.GrantItem), not by events.
package events

import "time"

// TopicTransactions is the topic of Transaction events. Partition counts
// are set where topics are created (scripts/infra and the Helm chart).
const TopicTransactions = "coins.transactions"

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
