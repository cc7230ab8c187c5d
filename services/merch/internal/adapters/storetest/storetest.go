// Package storetest is the contract every implementation of app.Store
// passes: each implementation's test builds a Harness on its real database
// and calls Run, so PostgreSQL and YDB are held to the same behaviour.
package storetest

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

// Harness is one fresh store (empty but for the seeded catalog) and the few
// implementation-specific hooks the contract needs to look inside it.
type Harness struct {
	Store app.Store
	// Order reads one order back.
	Order func(ctx context.Context, id string) (app.Order, error)
	// Age sets the orders' last touch d in the past.
	Age func(ctx context.Context, d time.Duration, ids ...string) error
}

// Run runs the contract; newHarness is called once per subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Run("CatalogSeeded", func(t *testing.T) { testCatalog(t, newHarness(t)) })
	t.Run("OrderLifecycle", func(t *testing.T) { testOrderLifecycle(t, newHarness(t)) })
	t.Run("ConcurrentCreateWithOneKey", func(t *testing.T) { testConcurrentCreate(t, newHarness(t)) })
	t.Run("ConcurrentCompleteCompletesOnce", func(t *testing.T) { testConcurrentComplete(t, newHarness(t)) })
	t.Run("ClaimPending", func(t *testing.T) { testClaimPending(t, newHarness(t)) })
	t.Run("ConcurrentClaimsAreDisjoint", func(t *testing.T) { testConcurrentClaims(t, newHarness(t)) })
	t.Run("Saga", func(t *testing.T) { testSaga(t, newHarness(t)) })
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Catalog is the seeded catalog, ordered by name.
var Catalog = []app.Item{
	{Name: "book", Price: 50}, {Name: "cup", Price: 20}, {Name: "hoody", Price: 300},
	{Name: "pen", Price: 10}, {Name: "pink-hoody", Price: 500}, {Name: "powerbank", Price: 200},
	{Name: "socks", Price: 10}, {Name: "t-shirt", Price: 80}, {Name: "umbrella", Price: 200},
	{Name: "wallet", Price: 50},
}

func testCatalog(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	items, err := h.Store.ListItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(Catalog) {
		t.Fatalf("items = %v", items)
	}
	for i := range Catalog {
		if items[i] != Catalog[i] {
			t.Fatalf("items[%d] = %v, want %v (all: %v)", i, items[i], Catalog[i], items)
		}
	}
	it, err := h.Store.GetItem(ctx, "pink-hoody")
	if err != nil || it.Price != 500 {
		t.Fatalf("get = %v, %v", it, err)
	}
	if _, err := h.Store.GetItem(ctx, "yacht"); !errors.Is(err, app.ErrUnknownItem) {
		t.Fatalf("unknown item err = %v", err)
	}
}

// NewOrder is a pending order for a cup.
func NewOrder(user, key string) app.Order {
	return app.Order{ID: uuid.NewString(), UserID: user, Item: "cup", Price: 20, IdempotencyKey: key, Status: app.StatusPending}
}

func testOrderLifecycle(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.Store
	user := uuid.NewString()
	o := NewOrder(user, "k1")
	got, created, err := s.CreateOrder(ctx, o)
	if err != nil || !created || got.ID != o.ID || got.Status != app.StatusPending || got.CreatedAt.IsZero() ||
		got.UserID != user || got.Item != "cup" || got.Price != 20 || got.IdempotencyKey != "k1" {
		t.Fatalf("create = %+v, %v, %v", got, created, err)
	}
	stored, err := h.Order(ctx, o.ID)
	if err != nil || stored.ID != o.ID || stored.Status != app.StatusPending || stored.Failure != "" ||
		!stored.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("stored = %+v (created %+v), %v", stored, got, err)
	}
	// Same user and key: the first order comes back.
	again, created, err := s.CreateOrder(ctx, NewOrder(user, "k1"))
	if err != nil || created || again.ID != o.ID || again.Status != app.StatusPending {
		t.Fatalf("second create = %+v, %v, %v", again, created, err)
	}
	// Same key, other user: a different order.
	if other, created, err := s.CreateOrder(ctx, NewOrder(uuid.NewString(), "k1")); err != nil || !created || other.ID == o.ID {
		t.Fatalf("other user's order: %+v, %v, %v", other, created, err)
	}

	done, err := s.CompleteOrder(ctx, o.ID)
	if err != nil || done.Status != app.StatusCompleted || done.ID != o.ID || done.Failure != "" ||
		done.UserID != user || done.Item != "cup" || done.Price != 20 ||
		!done.CreatedAt.Equal(got.CreatedAt) || done.UpdatedAt.Before(got.UpdatedAt) {
		t.Fatalf("complete = %+v (created %+v), %v", done, got, err)
	}
	if stored, err := h.Order(ctx, o.ID); err != nil || stored.Status != app.StatusCompleted || !stored.UpdatedAt.Equal(done.UpdatedAt) {
		t.Fatalf("stored after complete = %+v (returned %+v), %v", stored, done, err)
	}
	// Completing again changes nothing.
	if again, err := s.CompleteOrder(ctx, o.ID); err != nil || again.Status != app.StatusCompleted || !again.UpdatedAt.Equal(done.UpdatedAt) {
		t.Fatalf("complete again = %+v (first %+v), %v", again, done, err)
	}
	// A failure cannot overwrite a completed order.
	if got, err := s.FailOrder(ctx, o.ID, "insufficient funds"); err != nil || got.Status != app.StatusCompleted || got.Failure != "" {
		t.Fatalf("fail completed = %+v, %v", got, err)
	}
	if got, err := h.Order(ctx, o.ID); err != nil || got.Status != app.StatusCompleted || got.Failure != "" || !got.UpdatedAt.Equal(done.UpdatedAt) {
		t.Fatalf("stored after fail = %+v, %v", got, err)
	}

	// pending -> failed keeps the failure; failed stays failed.
	f := NewOrder(user, "k2")
	if _, _, err := s.CreateOrder(ctx, f); err != nil {
		t.Fatal(err)
	}
	got, err = s.FailOrder(ctx, f.ID, "insufficient funds")
	if err != nil || got.Status != app.StatusFailed || got.Failure != "insufficient funds" {
		t.Fatalf("fail = %+v, %v", got, err)
	}
	got, err = s.FailOrder(ctx, f.ID, "something else")
	if err != nil || got.Status != app.StatusFailed || got.Failure != "insufficient funds" {
		t.Fatalf("fail again = %+v, %v", got, err)
	}
	replay, created, err := s.CreateOrder(ctx, NewOrder(user, "k2"))
	if err != nil || created || replay.Status != app.StatusFailed || replay.ID != f.ID || replay.Failure != "insufficient funds" {
		t.Fatalf("replay of failed = %+v, %v, %v", replay, created, err)
	}
	// Completion wins over a failure a concurrent driver recorded: the
	// charge and the grant happened.
	won, err := s.CompleteOrder(ctx, f.ID)
	if err != nil || won.Status != app.StatusCompleted || won.Failure != "" || won.UpdatedAt.Before(got.UpdatedAt) {
		t.Fatalf("complete failed = %+v, %v", won, err)
	}
	if stored, err := h.Order(ctx, f.ID); err != nil || stored.Status != app.StatusCompleted || stored.Failure != "" {
		t.Fatalf("stored after completing a failed order = %+v, %v", stored, err)
	}
	// Unknown orders are errors, not silent successes.
	if _, err := s.CompleteOrder(ctx, uuid.NewString()); err == nil {
		t.Fatal("completing an unknown order succeeded")
	}
	if _, err := s.FailOrder(ctx, uuid.NewString(), "x"); err == nil {
		t.Fatal("failing an unknown order succeeded")
	}
}

func testConcurrentCreate(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	user := uuid.NewString()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ids     = map[string]bool{}
		created int
	)
	for range 10 {
		wg.Go(func() {
			o, c, err := h.Store.CreateOrder(ctx, NewOrder(user, "same"))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[o.ID] = true
			if c {
				created++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(ids) != 1 || created != 1 {
		t.Fatalf("ids = %v, created = %d; want one order created once", ids, created)
	}
}

func testConcurrentComplete(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	user := uuid.NewString()
	o := NewOrder(user, "k")
	if _, _, err := h.Store.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done []app.Order
	)
	for range 8 {
		wg.Go(func() {
			got, err := h.Store.CompleteOrder(ctx, o.ID)
			if err != nil || got.Status != app.StatusCompleted || got.Failure != "" || got.ID != o.ID {
				t.Errorf("complete = %+v, %v", got, err)
				return
			}
			mu.Lock()
			done = append(done, got)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// One completion took effect: every caller sees the order as that one
	// left it, which is how it is stored.
	stored, err := h.Order(ctx, o.ID)
	if err != nil || stored.Status != app.StatusCompleted || stored.Failure != "" {
		t.Fatalf("stored = %+v, %v", stored, err)
	}
	for _, got := range done {
		if !got.UpdatedAt.Equal(stored.UpdatedAt) {
			t.Fatalf("completion returned updated_at %s, stored %s: the order was completed more than once",
				got.UpdatedAt, stored.UpdatedAt)
		}
	}
}

// pendingOrders creates n pending orders of user and returns their ids.
func pendingOrders(t *testing.T, ctx context.Context, s app.Store, user, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		o := NewOrder(user, fmt.Sprintf("%s-%d", prefix, i))
		if _, _, err := s.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	return ids
}

func testClaimPending(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.Store
	user := uuid.NewString()
	old := pendingOrders(t, ctx, s, user, "old", 5)
	pendingOrders(t, ctx, s, user, "young", 1)
	failed := pendingOrders(t, ctx, s, user, "failed", 1)
	if _, err := s.FailOrder(ctx, failed[0], "insufficient funds"); err != nil {
		t.Fatal(err)
	}
	completed := pendingOrders(t, ctx, s, user, "completed", 1)
	if _, err := s.CompleteOrder(ctx, completed[0]); err != nil {
		t.Fatal(err)
	}
	// Age the old ones and the ended ones.
	if err := h.Age(ctx, time.Minute, append(append(append([]string(nil), old...), failed...), completed...)...); err != nil {
		t.Fatal(err)
	}

	first, err := s.ClaimPending(ctx, 10*time.Second, 3)
	if err != nil || len(first) != 3 {
		t.Fatalf("first claim = %d, %v", len(first), err)
	}
	second, err := s.ClaimPending(ctx, 10*time.Second, 3)
	if err != nil || len(second) != 2 {
		t.Fatalf("second claim = %d, %v", len(second), err)
	}
	seen := map[string]bool{}
	for _, o := range append(first, second...) {
		if o.Status != app.StatusPending || seen[o.ID] || o.UserID != user || o.Item != "cup" || o.Price != 20 {
			t.Fatalf("claimed %+v twice or not pending", o)
		}
		seen[o.ID] = true
	}
	for _, id := range old {
		if !seen[id] {
			t.Fatalf("old order %s not claimed", id)
		}
	}
	// Claimed orders are leased: nothing left to claim now.
	if third, err := s.ClaimPending(ctx, 10*time.Second, 3); err != nil || len(third) != 0 {
		t.Fatalf("third claim = %v, %v", third, err)
	}
	// The lease is the last touch: once it is old again, the order is
	// claimed again.
	if err := h.Age(ctx, time.Minute, old[0]); err != nil {
		t.Fatal(err)
	}
	if again, err := s.ClaimPending(ctx, 10*time.Second, 3); err != nil || len(again) != 1 || again[0].ID != old[0] {
		t.Fatalf("claim after the lease = %v, %v", again, err)
	}
}

func testConcurrentClaims(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	user := uuid.NewString()
	ids := pendingOrders(t, ctx, h.Store, user, "o", 12)
	if err := h.Age(ctx, time.Minute, ids...); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		claims = map[string]int{}
	)
	for range 4 {
		wg.Go(func() {
			for {
				got, err := h.Store.ClaimPending(ctx, 10*time.Second, 2)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, o := range got {
					claims[o.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claims) != len(ids) {
		t.Fatalf("claimed %d distinct orders, want %d", len(claims), len(ids))
	}
	for id, n := range claims {
		if n != 1 {
			t.Fatalf("order %s claimed %d times", id, n)
		}
	}
}

// coinsStub charges once per key.
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

func (c *coinsStub) setDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

func (c *coinsStub) left() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.balance
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

func (u *usersStub) grants() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]int, len(u.orders))
	for k, v := range u.orders {
		out[k] = v
	}
	return out
}

// testSaga runs the use cases on the real store: concurrent requests with
// one key, a failure, and recovery of a pending order.
func testSaga(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	coins := &coinsStub{balance: 600, keys: map[string]bool{}}
	users := &usersStub{orders: map[string]int{}}
	svc := app.New(h.Store, coins, users, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := svc.LoadCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	user := uuid.NewString()

	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[string]bool{}
	)
	for range 10 {
		wg.Go(func() {
			o, err := svc.Buy(ctx, user, "hoody", "key-1")
			if err != nil {
				t.Errorf("buy: %v", err)
				return
			}
			mu.Lock()
			ids[o.ID] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(ids) != 1 || coins.left() != 300 || len(users.grants()) != 1 {
		t.Fatalf("ids=%v balance=%d grants=%v", ids, coins.left(), users.grants())
	}
	for id := range ids {
		if got, err := h.Order(ctx, id); err != nil || got.Status != app.StatusCompleted {
			t.Fatalf("order = %+v, %v", got, err)
		}
	}

	// Not enough left for a pink hoody: failed, and the replay says so.
	o, err := svc.Buy(ctx, user, "pink-hoody", "key-2")
	if !errors.Is(err, app.ErrInsufficientFunds) {
		t.Fatalf("err = %v", err)
	}
	if _, err := svc.Buy(ctx, user, "pink-hoody", "key-2"); !errors.Is(err, app.ErrInsufficientFunds) {
		t.Fatalf("replay err = %v", err)
	}
	if got, err := h.Order(ctx, o.ID); err != nil || got.Status != app.StatusFailed {
		t.Fatalf("order = %+v, %v", got, err)
	}

	// Coins is down: the order stays pending until recovery drives it.
	coins.setDown(true)
	p, err := svc.Buy(ctx, user, "cup", "key-3")
	if !errors.Is(err, app.ErrPending) {
		t.Fatalf("err = %v", err)
	}
	coins.setDown(false)
	if err := h.Age(ctx, time.Minute, p.ID); err != nil {
		t.Fatal(err)
	}
	n, err := svc.RecoverPending(ctx, app.RecoveryConfig{Age: 10 * time.Second})
	if err != nil || n != 1 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	got, err := h.Order(ctx, p.ID)
	if err != nil || got.Status != app.StatusCompleted || users.grants()[p.ID] != 1 || coins.left() != 280 {
		t.Fatalf("order = %+v, grants = %v, balance = %d, %v", got, users.grants(), coins.left(), err)
	}
}
