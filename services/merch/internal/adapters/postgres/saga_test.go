package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/services/merch/internal/app"
)

// coinsStub charges once per key; the real coins service is another
// helper's and has its own tests.
type coinsStub struct {
	mu      sync.Mutex
	balance int64
	keys    map[string]bool
	down    bool
}

func (c *coinsStub) Charge(_ context.Context, _ string, amount int64, key, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return fmt.Errorf("%w: down", app.ErrTransient)
	}
	if c.keys[key] {
		return nil
	}
	if c.balance < amount {
		return app.ErrInsufficientFunds
	}
	c.balance -= amount
	c.keys[key] = true
	return nil
}

func (c *coinsStub) Credit(context.Context, string, int64, string, string) error {
	return errors.New("not used")
}

type usersStub struct {
	mu     sync.Mutex
	orders map[string]int
}

func (u *usersStub) GrantItem(_ context.Context, _, _, orderID string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.orders[orderID]++
	return nil
}

// TestSagaOnPostgres runs the use cases on the real store: concurrent
// requests with one key, a failure, and recovery of a pending order.
func TestSagaOnPostgres(t *testing.T) {
	store, pool, _ := newStore(t)
	ctx := context.Background()
	coins := &coinsStub{balance: 600, keys: map[string]bool{}}
	users := &usersStub{orders: map[string]int{}}
	svc := app.New(store, coins, users, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := svc.LoadCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	user := uuid.NewString()

	var wg sync.WaitGroup
	ids := make(chan string, 10)
	for range 10 {
		wg.Go(func() {
			o, err := svc.Buy(ctx, user, "hoody", "key-1")
			if err != nil {
				t.Errorf("buy: %v", err)
				return
			}
			ids <- o.ID
		})
	}
	wg.Wait()
	close(ids)
	distinct := map[string]bool{}
	for id := range ids {
		distinct[id] = true
	}
	var orders, events int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if len(distinct) != 1 || orders != 1 || events != 1 || coins.balance != 300 || len(users.orders) != 1 {
		t.Fatalf("ids=%v orders=%d events=%d balance=%d grants=%v", distinct, orders, events, coins.balance, users.orders)
	}

	// Not enough left for a pink hoody: failed, and the replay says so.
	o, err := svc.Buy(ctx, user, "pink-hoody", "key-2")
	if !errors.Is(err, app.ErrInsufficientFunds) {
		t.Fatalf("err = %v", err)
	}
	if _, err := svc.Buy(ctx, user, "pink-hoody", "key-2"); !errors.Is(err, app.ErrInsufficientFunds) {
		t.Fatalf("replay err = %v", err)
	}
	if got, _ := store.GetOrder(ctx, o.ID); got.Status != app.StatusFailed {
		t.Fatalf("order = %+v", got)
	}

	// Coins is down: the order stays pending until recovery drives it.
	coins.mu.Lock()
	coins.down = true
	coins.mu.Unlock()
	p, err := svc.Buy(ctx, user, "cup", "key-3")
	if !errors.Is(err, app.ErrPending) {
		t.Fatalf("err = %v", err)
	}
	coins.mu.Lock()
	coins.down = false
	coins.mu.Unlock()
	if _, err := pool.Exec(ctx, `UPDATE orders SET updated_at = now() - interval '1 minute' WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	n, err := svc.RecoverPending(ctx, app.RecoveryConfig{Age: 10 * time.Second})
	if err != nil || n != 1 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	got, err := store.GetOrder(ctx, p.ID)
	if err != nil || got.Status != app.StatusCompleted || users.orders[p.ID] != 1 || coins.balance != 280 {
		t.Fatalf("order = %+v, grants = %v, balance = %d, %v", got, users.orders, coins.balance, err)
	}
}
