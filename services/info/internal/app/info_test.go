package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// barrier makes each of n calls wait until all n have started: calls made
// one after another would never get past it.
type barrier struct {
	mu      sync.Mutex
	n       int
	arrived int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) wait(ctx context.Context) error {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("calls were not made in parallel")
	}
}

type fakeCoins struct {
	b   *barrier
	err error
}

func (f *fakeCoins) GetOverview(ctx context.Context, _ string) (int64, []CounterpartTotal, []CounterpartTotal, error) {
	if f.err != nil {
		return 0, nil, nil, f.err
	}
	if err := f.b.wait(ctx); err != nil {
		return 0, nil, nil, err
	}
	return 870, []CounterpartTotal{{"bob", 30}}, nil, nil
}

type fakeUsers struct {
	b         *barrier
	cancelled chan error
}

func (f *fakeUsers) GetInventory(ctx context.Context, _ string) ([]InventoryItem, error) {
	err := f.b.wait(ctx)
	if f.cancelled != nil {
		f.cancelled <- err
	}
	if err != nil {
		return nil, err
	}
	return []InventoryItem{{"cup", 2}, {"pen", 1}}, nil
}

func TestGetInfoCombinesParallelCalls(t *testing.T) {
	b := newBarrier(2)
	svc := New(&fakeCoins{b: b}, &fakeUsers{b: b}, nil)
	info, err := svc.GetInfo(context.Background(), uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	if info.Coins != 870 || len(info.Inventory) != 2 || info.Inventory[0] != (InventoryItem{"cup", 2}) ||
		len(info.Received) != 1 || info.Received[0] != (CounterpartTotal{"bob", 30}) {
		t.Fatalf("info = %+v", info)
	}
	if info.Sent == nil {
		t.Fatal("sent must be an empty list, not nil")
	}
}

func TestGetInfoAccountNotFound(t *testing.T) {
	b := newBarrier(2)
	users := &fakeUsers{b: b, cancelled: make(chan error, 1)}
	svc := New(&fakeCoins{b: b, err: fmt.Errorf("coins: %w", ErrNotFound)}, users, nil)
	_, err := svc.GetInfo(context.Background(), uuid.NewString())
	if !errors.Is(err, ErrAccountNotFound) {
		t.Fatalf("err = %v", err)
	}
	// The failure cancelled the call still waiting.
	if err := <-users.cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("inventory call ended with %v, want cancelled", err)
	}
}

func TestGetInfoBackendFailureIsUnavailable(t *testing.T) {
	b := newBarrier(2)
	svc := New(&fakeCoins{b: b, err: errors.New("connection refused")}, &fakeUsers{b: b}, nil)
	_, err := svc.GetInfo(context.Background(), uuid.NewString())
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrAccountNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestGetInfoInvalidUser(t *testing.T) {
	svc := New(nil, nil, nil)
	if _, err := svc.GetInfo(context.Background(), "bob"); !errors.Is(err, ErrInvalidUserID) {
		t.Fatalf("err = %v", err)
	}
}
