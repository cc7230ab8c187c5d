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
	GrantedBefore(ctx context.Context, gs []app.Grant) ([]bool, error)
}

// PurchaseHandler returns the batch handler for events.TopicPurchases: each
// completed purchase grants its item, idempotently by order id (the same
// grants table as the GrantItem RPC the purchase saga calls first, so the
// event usually finds the grant done: one query for the whole batch finds
// those, and only the others take a grant transaction). A malformed event,
// or one that can never apply, is logged and skipped; any other failure
// fails the batch so that it is retried.
func PurchaseHandler(g Granter, log *slog.Logger) func(context.Context, []*kgo.Record) error {
	log = log.With("consumer", Group)
	return func(ctx context.Context, records []*kgo.Record) error {
		grants := make([]app.Grant, 0, len(records))
		for _, rec := range records {
			var ev events.PurchaseCompleted
			if err := json.Unmarshal(rec.Value, &ev); err != nil {
				log.Error("skipping malformed purchase event", "partition", rec.Partition, "offset", rec.Offset, "error", err)
				continue
			}
			grants = append(grants, app.Grant{OrderID: ev.OrderID, UserID: ev.UserID, Item: ev.Item})
		}
		if len(grants) == 0 {
			return nil
		}
		done, err := g.GrantedBefore(ctx, grants)
		if err != nil {
			return err
		}
		for i, gr := range grants {
			if done[i] {
				continue
			}
			granted, err := g.GrantItem(ctx, gr)
			switch {
			case err == nil:
				if granted {
					log.InfoContext(ctx, "item granted from purchase event", "order_id", gr.OrderID, "user_id", gr.UserID, "item", gr.Item)
				}
			case permanent(err):
				log.Error("skipping purchase event that cannot apply", "order_id", gr.OrderID, "error", err)
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
