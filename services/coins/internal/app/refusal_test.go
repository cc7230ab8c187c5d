package app

import (
	"context"
	"errors"
	"testing"
)

// A recorded refusal is the key's outcome: the same request gets it again
// without a new try, a different request with the key is a reuse, and a
// request that loses the race for its key to a refusal answers that
// refusal.
func TestRefusalIsReplayed(t *testing.T) {
	ctx := context.Background()
	repo := newFakeRepo()
	alice := repo.add("alice", 5_000)
	repo.add("bob", 0)
	svc := New(repo, nil)

	charge := ChargeCmd{alice.String(), 51, "order:1", "t-shirt"}
	if _, err := svc.Charge(ctx, charge); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("overcharge: %v", err)
	}
	repo.mu.Lock()
	repo.balances[alice] = 100_000
	repo.mu.Unlock()
	if _, err := svc.Charge(ctx, charge); !errors.Is(err, ErrInsufficientFunds) || KindOf(err) != KindFailedPrecondition {
		t.Errorf("replayed refusal: %v, want insufficient funds", err)
	}
	if _, err := svc.Charge(ctx, ChargeCmd{alice.String(), 50, "order:1", "book"}); !errors.Is(err, ErrKeyReused) {
		t.Errorf("refused key, other amount: %v, want ErrKeyReused", err)
	}

	// A transfer that loses the race for its key to a refusal of the same
	// request answers the refusal.
	cmd := TransferCmd{alice.String(), "bob", 5, "race"}
	repo.raceKey = &StoredTransaction{
		RequestHash: requestHash("transfer", alice.String(), "bob", 500), Refusal: ErrInsufficientFunds,
	}
	if _, err := svc.Transfer(ctx, cmd); !errors.Is(err, ErrInsufficientFunds) {
		t.Errorf("lost race to a refusal: %v, want insufficient funds", err)
	}
	if len(repo.moves) != 0 {
		t.Errorf("refused keys moved money: %+v", repo.moves)
	}
}
