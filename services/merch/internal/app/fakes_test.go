package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"
)

var catalog = []Item{
	{"t-shirt", 80}, {"cup", 20}, {"book", 50}, {"pen", 10}, {"powerbank", 200},
	{"hoody", 300}, {"umbrella", 200}, {"socks", 10}, {"wallet", 50}, {"pink-hoody", 500},
}

// fakeStore keeps orders in memory with the semantics of the real store.
type fakeStore struct {
	mu     sync.Mutex
	items  map[string]Item
	orders map[string]*Order
	byKey  map[string]string
	// completions counts the orders' transitions to completed.
	completions int
	itemReads   int
	listReads   int
	now         func() time.Time
}

func newFakeStore() *fakeStore {
	s := &fakeStore{items: map[string]Item{}, orders: map[string]*Order{}, byKey: map[string]string{}, now: time.Now}
	for _, it := range catalog {
		s.items[it.Name] = it
	}
	return s
}

func (s *fakeStore) ListItems(context.Context) ([]Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listReads++
	var out []Item
	for _, it := range s.items {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *fakeStore) GetItem(_ context.Context, name string) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.itemReads++
	it, ok := s.items[name]
	if !ok {
		return Item{}, ErrUnknownItem
	}
	return it, nil
}

func (s *fakeStore) CreateOrder(_ context.Context, o Order) (Order, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := o.UserID + "\x00" + o.IdempotencyKey
	if id, ok := s.byKey[k]; ok {
		return *s.orders[id], false, nil
	}
	o.Status = StatusPending
	o.CreatedAt, o.UpdatedAt = s.now(), s.now()
	s.orders[o.ID] = &o
	s.byKey[k] = o.ID
	return o, true, nil
}

func (s *fakeStore) FailOrder(_ context.Context, id, failure string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, fmt.Errorf("no order %s", id)
	}
	if o.Status == StatusPending {
		o.Status, o.Failure, o.UpdatedAt = StatusFailed, failure, s.now()
	}
	return *o, nil
}

func (s *fakeStore) CompleteOrder(_ context.Context, id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, fmt.Errorf("no order %s", id)
	}
	if o.Status != StatusCompleted {
		o.Status, o.Failure, o.UpdatedAt = StatusCompleted, "", s.now()
		s.completions++
	}
	return *o, nil
}

func (s *fakeStore) ClaimPending(_ context.Context, olderThan time.Duration, limit int) ([]Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Order
	for _, o := range s.orders {
		if len(out) == limit {
			break
		}
		if o.Status == StatusPending && !o.UpdatedAt.After(s.now().Add(-olderThan)) {
			o.UpdatedAt = s.now()
			out = append(out, *o)
		}
	}
	return out, nil
}

func (s *fakeStore) order(id string) Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.orders[id]
}

func (s *fakeStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.orders)
}

// fakeCoins charges once per key and keeps a refusal for insufficient
// funds as the key's outcome, like the coins service.
type fakeCoins struct {
	mu       sync.Mutex
	balances map[string]int64
	charged  map[string]int64 // key -> amount
	refused  map[string]int64 // key -> amount refused for insufficient funds
	credited map[string]int64
	calls    int
	// fail, when set, is returned by the next Charge calls instead.
	fail error
}

func newFakeCoins() *fakeCoins {
	return &fakeCoins{balances: map[string]int64{}, charged: map[string]int64{}, refused: map[string]int64{}, credited: map[string]int64{}}
}

func (c *fakeCoins) Charge(_ context.Context, userID string, amount int64, key, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		return c.fail
	}
	if _, ok := c.charged[key]; ok {
		return nil // replay
	}
	if _, ok := c.refused[key]; ok {
		return fmt.Errorf("coins charge: %w", ErrInsufficientFunds) // replay
	}
	bal, ok := c.balances[userID]
	if !ok {
		return fmt.Errorf("coins charge: %w", ErrAccountNotFound)
	}
	if bal < amount {
		c.refused[key] = amount
		return fmt.Errorf("coins charge: %w", ErrInsufficientFunds)
	}
	c.balances[userID] = bal - amount
	c.charged[key] = amount
	return nil
}

func (c *fakeCoins) Credit(_ context.Context, userID string, amount int64, key, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.credited[key]; ok {
		return nil
	}
	c.balances[userID] += amount
	c.credited[key] = amount
	return nil
}

func (c *fakeCoins) setFail(err error) {
	c.mu.Lock()
	c.fail = err
	c.mu.Unlock()
}

func (c *fakeCoins) setBalance(user string, amount int64) {
	c.mu.Lock()
	c.balances[user] = amount
	c.mu.Unlock()
}

func (c *fakeCoins) chargedKeys() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.charged))
	for k, v := range c.charged {
		out[k] = v
	}
	return out
}

func (c *fakeCoins) balance(user string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.balances[user]
}

// fakeUsers grants once per order id, like the user service.
type fakeUsers struct {
	mu      sync.Mutex
	calls   int
	granted map[string]string // order id -> item
	fail    error
}

func newFakeUsers() *fakeUsers { return &fakeUsers{granted: map[string]string{}} }

func (u *fakeUsers) GrantItem(_ context.Context, _, item, orderID string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls++
	if u.fail != nil {
		return u.fail
	}
	u.granted[orderID] = item
	return nil
}

func (u *fakeUsers) snapshot() (calls int, granted map[string]string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	g := make(map[string]string, len(u.granted))
	for k, v := range u.granted {
		g[k] = v
	}
	return u.calls, g
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
