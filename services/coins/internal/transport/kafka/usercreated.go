// Package kafka consumes the events the coins service reacts to: a
// user.created event opens the user's account with the welcome grant.
package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/kafka"
	"github.com/merchshop/merchshop/pkg/outbox"

	"github.com/merchshop/merchshop/services/coins/internal/app"
)

// AccountOpener opens accounts (implemented by *app.Service). OpenAccount
// is idempotent on the user id, so redelivered events are harmless and no
// processed-events claim is needed.
type AccountOpener interface {
	OpenAccount(ctx context.Context, userID, username string) (app.OpenResult, error)
}

// Group is the consumer group of the user.created consumer.
const Group = "coins-user-created"

// UserCreatedHandler returns the batch handler: it opens an account per
// event, skips (logs) malformed ones and events the rules refuse, and
// fails the batch on anything else so that it is retried.
func UserCreatedHandler(opener AccountOpener, log *slog.Logger) kafka.BatchHandler {
	return func(ctx context.Context, records []*kgo.Record) error {
		for _, rec := range records {
			var ev events.UserCreated
			if err := json.Unmarshal(rec.Value, &ev); err != nil {
				log.WarnContext(ctx, "skipping malformed user.created event", "topic", rec.Topic,
					"partition", rec.Partition, "offset", rec.Offset, "event_id", outbox.EventID(rec), "error", err)
				continue
			}
			res, err := opener.OpenAccount(ctx, ev.UserID, ev.Username)
			if k := app.KindOf(err); k != 0 && k != app.KindBusy {
				// Bad ids, bad names, a username owned by another user:
				// retrying cannot help.
				log.WarnContext(ctx, "skipping user.created event the rules refuse", "topic", rec.Topic,
					"partition", rec.Partition, "offset", rec.Offset, "user_id", ev.UserID, "error", err)
				continue
			}
			if err != nil {
				return fmt.Errorf("open account %s: %w", ev.UserID, err)
			}
			if res.Created {
				log.InfoContext(ctx, "account opened", "user_id", ev.UserID, "event_id", ev.EventID)
			}
		}
		return nil
	}
}

// NewUserCreatedConsumer joins group on topic with the handler; run its
// Run as a component.
func NewUserCreatedConsumer(brokers []string, group, topic string, opener AccountOpener, log *slog.Logger) (*kafka.Consumer, error) {
	l := log.With("component", "user-created-consumer")
	return kafka.NewConsumer(kafka.ConsumerConfig{Brokers: brokers, Group: group, Topics: []string{topic}},
		l, UserCreatedHandler(opener, l))
}
