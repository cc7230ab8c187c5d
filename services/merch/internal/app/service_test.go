package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

type fixture struct {
	store *fakeStore
	coins *fakeCoins
	users *fakeUsers
	svc   *Service
	user  string
}

func newFixture(t *testing.T, balance int64) *fixture {
	t.Helper()
	f := &fixture{store: newFakeStore(), coins: newFakeCoins(), users: newFakeUsers(), user: uuid.NewString()}
	f.coins.balances[f.user] = balance
	f.svc = New(f.store, f.coins, f.users, quietLog())
	if err := f.svc.LoadCatalog(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

// later makes every order look older than any recovery age.
func (f *fixture) later() {
	f.store.mu.Lock()
	f.store.now = func() time.Time { return time.Now().Add(time.Hour) }
	f.store.mu.Unlock()
}

func TestBuyHappyPath(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	o, err := f.svc.Buy(ctx, f.user, "cup", "k1")
	if err != nil {
		t.Fatalf("buy: %v", err)
	}
	if o.Status != StatusCompleted || o.Item != "cup" || o.Price != 20 {
		t.Fatalf("order = %+v", o)
	}
	if got := f.coins.balance(f.user); got != 980 {
		t.Fatalf("balance = %d, want 980", got)
	}
	if amt := f.coins.charged["order:"+o.ID]; amt != 20 {
		t.Fatalf("charge keyed by order id: got %v", f.coins.charged)
	}
	calls, granted := f.users.snapshot()
	if calls != 1 || granted[o.ID] != "cup" {
		t.Fatalf("grant calls=%d granted=%v", calls, granted)
	}
	if stored := f.store.order(o.ID); stored.Status != StatusCompleted || f.store.completions != 1 {
		t.Fatalf("stored order = %+v, completions = %d; want completed once", stored, f.store.completions)
	}
	if f.store.itemReads != 0 || f.store.listReads != 1 {
		t.Fatalf("catalog queries: item %d list %d; want the cache to answer", f.store.itemReads, f.store.listReads)
	}
}

func TestBuyInsufficientFundsFailsAndNeverGrants(t *testing.T) {
	f := newFixture(t, 100)
	ctx := context.Background()
	o, err := f.svc.Buy(ctx, f.user, "hoody", "k1")
	if !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("err = %v, want insufficient funds", err)
	}
	stored := f.store.order(o.ID)
	if stored.Status != StatusFailed || stored.Failure != "insufficient funds" {
		t.Fatalf("stored order = %+v", stored)
	}
	// The replay returns the same failure without charging again, even
	// though the user could pay now.
	f.coins.balances[f.user] = 1000
	o2, err := f.svc.Buy(ctx, f.user, "hoody", "k1")
	if !errors.Is(err, ErrInsufficientFunds) || o2.ID != o.ID {
		t.Fatalf("replay = %+v, %v", o2, err)
	}
	if f.coins.calls != 1 {
		t.Fatalf("charge calls = %d, want 1", f.coins.calls)
	}
	if calls, _ := f.users.snapshot(); calls != 0 {
		t.Fatalf("grant called %d times for an unpaid order", calls)
	}
	if f.store.completions != 0 {
		t.Fatalf("a failed order was completed")
	}
	// Recovery leaves a failed order alone.
	f.later()
	if n, err := f.svc.RecoverPending(ctx, RecoveryConfig{}); err != nil || n != 0 {
		t.Fatalf("recovery = %d, %v", n, err)
	}
}

func TestBuyWithoutAccountFails(t *testing.T) {
	f := newFixture(t, 0)
	delete(f.coins.balances, f.user)
	o, err := f.svc.Buy(context.Background(), f.user, "pen", "k1")
	if !errors.Is(err, ErrAccountNotFound) {
		t.Fatalf("err = %v", err)
	}
	if got := f.store.order(o.ID); got.Status != StatusFailed || got.Failure != ErrAccountNotFound.Error() {
		t.Fatalf("order = %+v", got)
	}
}

func TestTransientChargeErrorLeavesPending(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	f.coins.setFail(fmt.Errorf("coins charge: %w: unavailable", ErrTransient))
	o, err := f.svc.Buy(ctx, f.user, "book", "k1")
	if !errors.Is(err, ErrPending) {
		t.Fatalf("err = %v, want pending", err)
	}
	if got := f.store.order(o.ID); got.Status != StatusPending {
		t.Fatalf("order = %+v, want pending", got)
	}
	if calls, _ := f.users.snapshot(); calls != 0 {
		t.Fatalf("grant called before the charge succeeded")
	}
	// The client retries with the same key once coins is back.
	f.coins.setFail(nil)
	o2, err := f.svc.Buy(ctx, f.user, "book", "k1")
	if err != nil || o2.ID != o.ID || o2.Status != StatusCompleted {
		t.Fatalf("retry = %+v, %v", o2, err)
	}
	if got := f.coins.balance(f.user); got != 950 {
		t.Fatalf("balance = %d", got)
	}
}

func TestReplayOfCompletedReturnsSameOrder(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	first, err := f.svc.Buy(ctx, f.user, "t-shirt", "same")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := f.svc.Buy(ctx, f.user, "t-shirt", "same")
		if err != nil || again.ID != first.ID || again.Status != StatusCompleted {
			t.Fatalf("replay = %+v, %v", again, err)
		}
	}
	if got := f.coins.balance(f.user); got != 920 {
		t.Fatalf("balance = %d, want one charge of 80", got)
	}
	if calls, _ := f.users.snapshot(); calls != 1 {
		t.Fatalf("grant calls = %d", calls)
	}
	if f.store.completions != 1 {
		t.Fatalf("completions = %d, want 1", f.store.completions)
	}
	// A new key is a new purchase.
	other, err := f.svc.Buy(ctx, f.user, "t-shirt", "other")
	if err != nil || other.ID == first.ID {
		t.Fatalf("new key = %+v, %v", other, err)
	}
}

func TestKeyReusedForDifferentItem(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	if _, err := f.svc.Buy(ctx, f.user, "cup", "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Buy(ctx, f.user, "pen", "k"); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("err = %v, want key reused", err)
	}
	if f.coins.balance(f.user) != 980 {
		t.Fatalf("second item was charged")
	}
}

func TestBuyValidation(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	cases := []struct {
		name, user, item, key string
		want                  error
	}{
		{"bad user", "nope", "cup", "k", ErrInvalidUserID},
		{"empty key", f.user, "cup", "", ErrInvalidKey},
		{"long key", f.user, "cup", strings.Repeat("k", 201), ErrInvalidKey},
		{"unknown item", f.user, "yacht", "k", ErrUnknownItem},
		{"empty item", f.user, "", "k", ErrUnknownItem},
		{"huge item", f.user, strings.Repeat("x", 1000), "k", ErrUnknownItem},
	}
	for _, c := range cases {
		if _, err := f.svc.Buy(ctx, c.user, c.item, c.key); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	if f.store.count() != 0 {
		t.Fatalf("invalid requests created orders")
	}
	if _, err := f.svc.Buy(ctx, f.user, "cup", strings.Repeat("é", 200)); err != nil {
		t.Fatalf("200-character key refused: %v", err)
	}
}

func TestGrantRefusedRefunds(t *testing.T) {
	f := newFixture(t, 1000)
	f.users.fail = fmt.Errorf("user grant: %w: unknown user", ErrRejected)
	o, err := f.svc.Buy(context.Background(), f.user, "wallet", "k")
	if !errors.Is(err, ErrRefunded) {
		t.Fatalf("err = %v", err)
	}
	if got := f.coins.balance(f.user); got != 1000 {
		t.Fatalf("balance = %d, want refunded 1000", got)
	}
	if f.coins.credited["refund:"+o.ID] != 50 {
		t.Fatalf("refund not keyed by order: %v", f.coins.credited)
	}
	if got := f.store.order(o.ID); got.Status != StatusFailed {
		t.Fatalf("order = %+v", got)
	}
}

func TestRecoveryDrivesPendingOrder(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	// The charge went through but the grant did not: a crash or outage
	// between the steps.
	f.users.fail = fmt.Errorf("user grant: %w: unavailable", ErrTransient)
	o, err := f.svc.Buy(ctx, f.user, "umbrella", "k")
	if !errors.Is(err, ErrPending) {
		t.Fatalf("err = %v", err)
	}
	f.users.mu.Lock()
	f.users.fail = nil
	f.users.mu.Unlock()

	// Too young to be taken over.
	if n, err := f.svc.RecoverPending(ctx, RecoveryConfig{Age: time.Hour}); err != nil || n != 0 {
		t.Fatalf("young order recovered: %d, %v", n, err)
	}
	f.later()
	n, err := f.svc.RecoverPending(ctx, RecoveryConfig{Age: time.Second})
	if err != nil || n != 1 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	if got := f.store.order(o.ID); got.Status != StatusCompleted {
		t.Fatalf("order = %+v", got)
	}
	if got := f.coins.balance(f.user); got != 800 {
		t.Fatalf("balance = %d, want a single charge of 200", got)
	}
	calls, granted := f.users.snapshot()
	if calls != 2 || len(granted) != 1 {
		// one failed call from Buy, one from recovery
		t.Fatalf("grant calls = %d granted = %v", calls, granted)
	}
	// A second pass finds nothing to do.
	if n, err := f.svc.RecoverPending(ctx, RecoveryConfig{Age: time.Second}); err != nil || n != 0 {
		t.Fatalf("second pass = %d, %v", n, err)
	}
	if calls, _ := f.users.snapshot(); calls != 2 {
		t.Fatalf("grant called again after completion")
	}
	if f.store.completions != 1 {
		t.Fatalf("completions = %d, want 1", f.store.completions)
	}
}

func TestRecoveryFailsUnpayableOrder(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	f.coins.setFail(fmt.Errorf("%w: timeout", ErrTransient))
	o, err := f.svc.Buy(ctx, f.user, "pink-hoody", "k")
	if !errors.Is(err, ErrPending) {
		t.Fatalf("err = %v", err)
	}
	f.coins.setFail(nil)
	f.coins.balances[f.user] = 100 // spent elsewhere meanwhile
	f.later()
	if n, err := f.svc.RecoverPending(ctx, RecoveryConfig{Age: time.Second}); err != nil || n != 1 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	got := f.store.order(o.ID)
	if got.Status != StatusFailed || got.Failure != "insufficient funds" {
		t.Fatalf("order = %+v", got)
	}
	if calls, _ := f.users.snapshot(); calls != 0 {
		t.Fatalf("granted an unpaid order")
	}
}

func TestRecoveryBatches(t *testing.T) {
	f := newFixture(t, 100000)
	ctx := context.Background()
	f.coins.setFail(fmt.Errorf("%w: down", ErrTransient))
	for i := range 7 {
		if _, err := f.svc.Buy(ctx, f.user, "pen", fmt.Sprint("k", i)); !errors.Is(err, ErrPending) {
			t.Fatal(err)
		}
	}
	f.coins.setFail(nil)
	f.later()
	n, err := f.svc.RecoverPending(ctx, RecoveryConfig{Age: time.Second, Batch: 3})
	if err != nil || n != 7 {
		t.Fatalf("recovered %d, %v", n, err)
	}
}

func TestRecoveryComponent(t *testing.T) {
	f := newFixture(t, 1000)
	f.coins.setFail(fmt.Errorf("%w: down", ErrTransient))
	o, _ := f.svc.Buy(context.Background(), f.user, "socks", "k")
	f.coins.setFail(nil)
	f.later()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Recovery(RecoveryConfig{Interval: 10 * time.Millisecond, Age: time.Second})(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for f.store.order(o.ID).Status != StatusCompleted {
		if time.Now().After(deadline) {
			t.Fatal("recovery loop did not complete the order")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("component returned %v", err)
	}
}

func TestConcurrentBuysWithOneKey(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make(chan string, 10)
	for range 10 {
		wg.Go(func() {
			o, err := f.svc.Buy(ctx, f.user, "powerbank", "one-key")
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
	if len(distinct) > 1 {
		t.Fatalf("order ids = %v, want one", distinct)
	}
	if f.store.count() != 1 {
		t.Fatalf("orders = %d, want 1", f.store.count())
	}
	if got := f.coins.balance(f.user); got != 800 {
		t.Fatalf("balance = %d, want one charge", got)
	}
	if _, granted := f.users.snapshot(); len(granted) != 1 {
		t.Fatalf("granted = %v", granted)
	}
	if f.store.completions != 1 {
		t.Fatalf("completions = %d, want 1", f.store.completions)
	}
}

func TestListItemsSortedAndCached(t *testing.T) {
	f := newFixture(t, 0)
	for range 3 {
		items, err := f.svc.ListItems(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != 10 {
			t.Fatalf("items = %v", items)
		}
		for i := 1; i < len(items); i++ {
			if items[i-1].Name >= items[i].Name {
				t.Fatalf("not sorted: %v", items)
			}
		}
	}
	if f.store.listReads != 1 {
		t.Fatalf("catalog read %d times", f.store.listReads)
	}
	// Without a load at start the first call reads it.
	svc := New(f.store, f.coins, f.users, quietLog())
	if items, err := svc.ListItems(context.Background()); err != nil || len(items) != 10 {
		t.Fatalf("lazy list = %v, %v", items, err)
	}
}

func TestFailureErrorRoundTrip(t *testing.T) {
	for _, e := range failures {
		if got := failureError(e.Error()); !errors.Is(got, e) {
			t.Errorf("%v -> %v", e, got)
		}
	}
	if got := failureError("something new"); !errors.Is(got, ErrOrderFailed) {
		t.Errorf("unknown failure -> %v", got)
	}
}
