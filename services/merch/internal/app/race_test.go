package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// hookCoins runs after right after the first Charge has its answer and
// before the caller sees it: the window in which another driver of the
// same order may run.
type hookCoins struct {
	Coins
	mu    sync.Mutex
	fired bool
	after func()
}

func (h *hookCoins) Charge(ctx context.Context, userID string, amount int64, key, reason string) error {
	err := h.Coins.Charge(ctx, userID, amount, key, reason)
	h.mu.Lock()
	first := !h.fired
	h.fired = true
	h.mu.Unlock()
	if first {
		h.after()
	}
	return err
}

// pendingOrder records a pending order as both drivers would have read it.
func (f *fixture) pendingOrder(t *testing.T, item, key string) Order {
	t.Helper()
	it, err := f.svc.item(context.Background(), item)
	if err != nil {
		t.Fatal(err)
	}
	o, created, err := f.store.CreateOrder(context.Background(), Order{
		ID: fmt.Sprintf("order-%s", key), UserID: f.user, Item: it.Name, Price: it.Price, IdempotencyKey: key, Status: StatusPending,
	})
	if err != nil || !created {
		t.Fatalf("create order: %+v %v %v", o, created, err)
	}
	return o
}

// assertRefusedForGood: the order is failed for insufficient funds, no
// charge exists, nothing was granted or announced, and the balance is
// what it was set to.
func (f *fixture) assertRefusedForGood(t *testing.T, o Order, balance int64) {
	t.Helper()
	if got := f.store.order(o.ID); got.Status != StatusFailed || got.Failure != ErrInsufficientFunds.Error() {
		t.Errorf("order = %+v, want failed for insufficient funds", got)
	}
	if charged := f.coins.chargedKeys(); len(charged) != 0 {
		t.Errorf("charges %v exist for a failed order", charged)
	}
	if got := f.coins.balance(f.user); got != balance {
		t.Errorf("balance = %d, want %d (unchanged)", got, balance)
	}
	if calls, _ := f.users.snapshot(); calls != 0 {
		t.Errorf("grant called %d times for an unpaid order", calls)
	}
	if f.store.completions != 0 {
		t.Errorf("a failed order was completed")
	}
}

// The saga's race: driver A's charge is refused and A fails the order;
// meanwhile the user receives coins, and driver B (a client retry with the
// same key, or the recovery loop, which read the order while it was
// pending) charges the same order. B's charge must get A's refusal: the
// order stays failed and no charge exists, also when B would have died
// right after its charge.
func TestSecondDriverAfterRefusalCannotCharge(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 100)
	o := f.pendingOrder(t, "hoody", "k1")

	if got, err := f.svc.drive(ctx, o); !errors.Is(err, ErrInsufficientFunds) || got.Status != StatusFailed {
		t.Fatalf("driver A: %+v, %v", got, err)
	}
	f.coins.setBalance(f.user, 1000)

	// Driver B, from the pending order it read before A failed it.
	if got, err := f.svc.drive(ctx, o); !errors.Is(err, ErrInsufficientFunds) || got.Status != StatusFailed {
		t.Errorf("driver B: %+v, %v; want the refusal", got, err)
	}
	// A driver killed right after its charge: the charge is all it did.
	if err := f.coins.Charge(ctx, o.UserID, o.Price, "order:"+o.ID, o.Item); !errors.Is(err, ErrInsufficientFunds) {
		t.Errorf("charge of a refused order: %v; want the refusal", err)
	}
	// A client retry with the key answers the first outcome.
	if got, err := f.svc.Buy(ctx, f.user, "hoody", "k1"); !errors.Is(err, ErrInsufficientFunds) || got.ID != o.ID {
		t.Errorf("retry: %+v, %v", got, err)
	}
	// Recovery drives pending orders only, and there is nothing to repair.
	f.later()
	if n, err := f.svc.RecoverPending(ctx, RecoveryConfig{}); err != nil || n != 0 {
		t.Errorf("recovery = %d, %v", n, err)
	}
	f.assertRefusedForGood(t, o, 1000)
}

// The same race with B inside A's window: the user is paid and B runs the
// whole saga after A's charge was refused and before A records the
// failure.
func TestSecondDriverInsideRefusalWindowCannotCharge(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 100)
	o := f.pendingOrder(t, "hoody", "k1")
	var (
		bOrder Order
		bErr   error
	)
	hooked := &hookCoins{Coins: f.coins}
	hooked.after = func() {
		f.coins.setBalance(f.user, 1000)
		bOrder, bErr = f.svc.drive(ctx, o)
	}
	f.svc.coins = hooked

	got, err := f.svc.drive(ctx, o)
	if !errors.Is(err, ErrInsufficientFunds) || got.Status != StatusFailed {
		t.Errorf("driver A: %+v, %v", got, err)
	}
	if !errors.Is(bErr, ErrInsufficientFunds) || bOrder.Status != StatusFailed {
		t.Errorf("driver B: %+v, %v; want the refusal", bOrder, bErr)
	}
	f.assertRefusedForGood(t, o, 1000)
}

// Many drivers of one order race a top-up, and one driver dies right after
// its charge: whatever the interleaving, the order ends completed with one
// charge and one grant, or failed with no charge.
func TestDriversRacingTopUpAgreeOnTheOutcome(t *testing.T) {
	const drivers = 8
	completed, failed := 0, 0
	for round := range 40 {
		ctx := context.Background()
		f := newFixture(t, 250)
		o := f.pendingOrder(t, "hoody", fmt.Sprint("k", round))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range drivers {
			wg.Go(func() {
				<-start
				_, _ = f.svc.drive(ctx, o)
			})
		}
		toppedUp := make(chan struct{})
		wg.Go(func() {
			<-start
			f.coins.setBalance(f.user, 1000)
			close(toppedUp)
		})
		wg.Go(func() {
			<-toppedUp
			_ = f.coins.Charge(ctx, o.UserID, o.Price, "order:"+o.ID, o.Item) // and dies
		})
		close(start)
		wg.Wait()

		got := f.store.order(o.ID)
		charged := f.coins.chargedKeys()
		_, granted := f.users.snapshot()
		switch got.Status {
		case StatusCompleted:
			completed++
			if len(charged) != 1 || charged["order:"+o.ID] != 300 || granted[o.ID] != "hoody" || f.coins.balance(f.user) != 700 {
				t.Errorf("round %d: completed with charges %v, grants %v, balance %d", round, charged, granted, f.coins.balance(f.user))
			}
		case StatusFailed:
			failed++
			if len(charged) != 0 || len(granted) != 0 || f.coins.balance(f.user) != 1000 {
				t.Errorf("round %d: failed (%s) with charges %v, grants %v, balance %d", round, got.Failure, charged, granted, f.coins.balance(f.user))
			}
		default:
			t.Errorf("round %d: order %s", round, got.Status)
		}
	}
	t.Logf("%d rounds completed, %d failed", completed, failed)
}
