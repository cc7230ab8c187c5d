// Package kafka consumes the events the user service reacts to.
package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/services/user/internal/app"
)

// Group is the consumer group of the purchases consumer.
const Group = "user-purchases"

// Granter is the use case the purchases consumer drives.
type Granter interface {
	GrantItem(ctx context.Context, g app.Grant) (bool, error)
}

// PurchaseHandler returns the batch handler for events.TopicPurchases: each
// completed purchase grants its item, idempotently by order id (the same
// grants table as the GrantItem RPC the purchase saga calls first, so the
// event usually finds the grant done). A malformed event, or one that can
// never apply, is logged and skipped; any other failure fails the batch so
// that it is retried.
func PurchaseHandler(g Granter, log *slog.Logger) func(context.Context, []*kgo.Record) error {
	log = log.With("consumer", Group)
	return func(ctx context.Context, records []*kgo.Record) error {
		for _, rec := range records {
			var ev events.PurchaseCompleted
			if err := json.Unmarshal(rec.Value, &ev); err != nil {
				log.Error("skipping malformed purchase event", "partition", rec.Partition, "offset", rec.Offset, "error", err)
				continue
			}
			granted, err := g.GrantItem(ctx, app.Grant{OrderID: ev.OrderID, UserID: ev.UserID, Item: ev.Item})
			switch {
			case err == nil:
				if granted {
					log.InfoContext(ctx, "item granted from purchase event", "order_id", ev.OrderID, "user_id", ev.UserID, "item", ev.Item)
				}
			case permanent(err):
				log.Error("skipping purchase event that cannot apply", "partition", rec.Partition, "offset", rec.Offset,
					"order_id", ev.OrderID, "error", err)
			default:
				return err
			}
		}
		return nil
	}
}

// permanent reports errors that retrying cannot cure.
func permanent(err error) bool {
	return errors.Is(err, app.ErrInvalidUserID) || errors.Is(err, app.ErrInvalidOrderID) ||
		errors.Is(err, app.ErrInvalidItem) || errors.Is(err, app.ErrUnknownUser) ||
		errors.Is(err, app.ErrOrderConflict)
}
