// Package app holds the merch service's use cases: the catalog and the
// purchase saga (record the order, charge coins, grant the item, complete
// the order), with the recovery that drives
// orders left pending by a crash or an outage to their end.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxKeyLength bounds an idempotency key, in characters.
const MaxKeyLength = 200

// maxItemName bounds an item name worth looking up.
const maxItemName = 64

// Service runs the merch use cases.
type Service struct {
	store Store
	coins Coins
	users Users
	log   *slog.Logger

	mu     sync.RWMutex
	items  map[string]Item
	sorted []Item
	loaded bool
}

// New returns the service. Call LoadCatalog at start so that a purchase
// never pays for a catalog query.
func New(store Store, coins Coins, users Users, log *slog.Logger) *Service {
	return &Service{store: store, coins: coins, users: users, log: log, items: map[string]Item{}}
}

// LoadCatalog reads the whole catalog into memory. The catalog does not
// change while the service runs.
func (s *Service) LoadCatalog(ctx context.Context) error {
	items, err := s.store.ListItems(ctx)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	byName := make(map[string]Item, len(items))
	for _, it := range items {
		byName[it.Name] = it
	}
	sorted := append([]Item(nil), items...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	s.mu.Lock()
	s.items, s.sorted, s.loaded = byName, sorted, true
	s.mu.Unlock()
	return nil
}

// ListItems returns the catalog ordered by name.
func (s *Service) ListItems(ctx context.Context) ([]Item, error) {
	s.mu.RLock()
	loaded, sorted := s.loaded, s.sorted
	s.mu.RUnlock()
	if !loaded {
		if err := s.LoadCatalog(ctx); err != nil {
			return nil, err
		}
		s.mu.RLock()
		sorted = s.sorted
		s.mu.RUnlock()
	}
	return append([]Item(nil), sorted...), nil
}

// item returns a catalog item from memory, asking the store only on a miss.
func (s *Service) item(ctx context.Context, name string) (Item, error) {
	if name == "" || len(name) > maxItemName {
		return Item{}, ErrUnknownItem
	}
	s.mu.RLock()
	it, ok := s.items[name]
	s.mu.RUnlock()
	if ok {
		return it, nil
	}
	it, err := s.store.GetItem(ctx, name)
	if err != nil {
		return Item{}, err
	}
	s.mu.Lock()
	s.items[it.Name] = it
	s.mu.Unlock()
	return it, nil
}

// Buy runs the purchase saga for the user's request identified by key. A
// repeated key returns the first outcome: the same completed order, the
// same failure, or it drives a pending order on.
func (s *Service) Buy(ctx context.Context, userID, itemName, key string) (Order, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return Order{}, ErrInvalidUserID
	}
	if key == "" || utf8.RuneCountInString(key) > MaxKeyLength || !utf8.ValidString(key) {
		return Order{}, ErrInvalidKey
	}
	it, err := s.item(ctx, itemName)
	if err != nil {
		return Order{}, err
	}
	o, created, err := s.store.CreateOrder(ctx, Order{
		ID: uuid.NewString(), UserID: userID, Item: it.Name, Price: it.Price,
		IdempotencyKey: key, Status: StatusPending,
	})
	if err != nil {
		return Order{}, fmt.Errorf("create order: %w", err)
	}
	if !created && o.Item != it.Name {
		return Order{}, ErrKeyReused
	}
	return s.drive(ctx, o)
}

// drive takes an order through whatever steps remain. Every step is
// idempotent (the charge is keyed by the order id, the grant by the order
// id, completion only changes a pending order), so any number of drivers,
// in any replica, may run it at once or again after a crash.
func (s *Service) drive(ctx context.Context, o Order) (Order, error) {
	if o.Status != StatusPending {
		return outcome(o)
	}
	err := s.coins.Charge(ctx, o.UserID, o.Price, "order:"+o.ID, o.Item)
	switch {
	case err == nil:
	case errors.Is(err, ErrInsufficientFunds):
		// Final: coins records the refusal under the order's key and gives
		// it to every later charge of this order (see Coins.Charge). So a
		// second driver of the order (a client retry, the recovery loop)
		// cannot be charged after the user got coins meanwhile, and the
		// order cannot end failed with the coins taken, neither when that
		// driver finds it failed nor when it dies right after its charge.
		return s.fail(ctx, o, ErrInsufficientFunds)
	case errors.Is(err, ErrAccountNotFound):
		return s.fail(ctx, o, ErrAccountNotFound)
	case errors.Is(err, ErrRejected):
		s.log.Warn("charge refused", "order_id", o.ID, "user_id", o.UserID, "error", err)
		return s.fail(ctx, o, ErrPaymentRefused)
	case errors.Is(err, ErrTransient):
		return o, fmt.Errorf("%w: charge order %s: %w", ErrPending, o.ID, err)
	default:
		return o, fmt.Errorf("charge order %s: %w", o.ID, err)
	}

	err = s.users.GrantItem(ctx, o.UserID, o.Item, o.ID)
	switch {
	case err == nil:
	case errors.Is(err, ErrRejected):
		// The user service will never grant this item: pay the charge back
		// (keyed by the order, so a repeated refund is a replay) and fail.
		s.log.Warn("grant refused; refunding", "order_id", o.ID, "user_id", o.UserID, "item", o.Item, "error", err)
		if err := s.coins.Credit(ctx, o.UserID, o.Price, "refund:"+o.ID, "refund "+o.Item); err != nil {
			if errors.Is(err, ErrTransient) {
				return o, fmt.Errorf("%w: refund order %s: %w", ErrPending, o.ID, err)
			}
			// %v, not %w: a refusal of the refund (say "insufficient funds"
			// from coins) must not read as the purchase's own outcome.
			return o, fmt.Errorf("refund order %s: %v", o.ID, err) //nolint:errorlint // see above
		}
		return s.fail(ctx, o, ErrRefunded)
	case errors.Is(err, ErrTransient):
		return o, fmt.Errorf("%w: grant order %s: %w", ErrPending, o.ID, err)
	default:
		return o, fmt.Errorf("grant order %s: %w", o.ID, err)
	}

	done, err := s.store.CompleteOrder(ctx, o.ID)
	if err != nil {
		return o, fmt.Errorf("complete order %s: %w", o.ID, err)
	}
	return outcome(done)
}

func (s *Service) fail(ctx context.Context, o Order, reason error) (Order, error) {
	got, err := s.store.FailOrder(ctx, o.ID, reason.Error())
	if err != nil {
		return o, fmt.Errorf("fail order %s: %w", o.ID, err)
	}
	return outcome(got)
}

// outcome is what a caller gets for an order as it stands.
func outcome(o Order) (Order, error) {
	switch o.Status {
	case StatusCompleted:
		return o, nil
	case StatusFailed:
		return o, failureError(o.Failure)
	default:
		return o, ErrPending
	}
}
