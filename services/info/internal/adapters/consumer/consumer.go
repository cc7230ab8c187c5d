// Package consumer projects the coins service's transactions topic onto the
// ClickHouse history read model.
//
// Why a Go consumer and not ClickHouse's Kafka table engine: the engine in
// Debian's ClickHouse 18.16 is built on a librdkafka that predates Kafka 4,
// which removed the old protocol versions that librdkafka speaks, so it
// cannot read from the broker this system runs. A Go consumer (franz-go via
// pkg/kafka) also batches a whole poll into one native insert, commits
// offsets only after ClickHouse accepted the rows, skips a malformed message
// with a log instead of stalling, and is tested like the rest of the code.
package consumer

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/services/info/internal/app"
)

// Group is the consumer group of the history projection.
const Group = "info-history"

// Writer stores history entries. Writing the same entries again must not
// duplicate them (the ClickHouse table collapses them by key).
type Writer interface {
	Insert(ctx context.Context, entries []app.Entry) error
}

// Handler turns a polled batch of transaction events into one insert.
type Handler struct {
	w   Writer
	log *slog.Logger
}

// NewHandler returns the batch handler for pkg/kafka's consumer.
func NewHandler(w Writer, log *slog.Logger) *Handler {
	return &Handler{w: w, log: log.With("component", "history-consumer")}
}

// Handle projects records. A malformed record is logged and skipped; a
// write error is returned so that the batch is retried (redelivery is
// harmless: rows collapse by (user_id, transaction_id, kind)).
func (h *Handler) Handle(ctx context.Context, records []*kgo.Record) error {
	entries := make([]app.Entry, 0, 2*len(records))
	for _, r := range records {
		var tx events.Transaction
		if err := json.Unmarshal(r.Value, &tx); err != nil {
			h.log.Warn("skipping undecodable transaction event", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "error", err)
			continue
		}
		rows, err := app.EntriesFromTransaction(tx)
		if err != nil {
			h.log.Warn("skipping malformed transaction event", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "error", err)
			continue
		}
		entries = append(entries, rows...)
	}
	return h.w.Insert(ctx, entries)
}
