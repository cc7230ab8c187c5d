package app

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/merchshop/merchshop/pkg/viewcache"
)

// fakeViews records the view cache calls; beginErr makes Begin fail.
type fakeViews struct {
	mu       sync.Mutex
	begun    [][]string
	ended    int
	beginErr error
	commitBy time.Duration
	// moving is set by Move while a change is open (begun, not ended).
	open int
}

func (f *fakeViews) Begin(_ context.Context, ids ...string) (viewcache.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begun = append(f.begun, ids)
	f.open++
	return viewcache.NewChange(ids, time.Now().Add(f.commitBy)), f.beginErr
}

func (f *fakeViews) End(context.Context, viewcache.Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended++
	f.open--
	return nil
}

// viewsRepo checks that every movement is written inside an open change.
type viewsRepo struct {
	*fakeRepo
	views    *fakeViews
	inChange bool
}

func (r *viewsRepo) Move(ctx context.Context, req MoveRequest, decide Decide) error {
	return r.fakeRepo.Move(ctx, req, func(ctx context.Context, l Locked) (Decision, error) {
		d, err := decide(ctx, l)
		if d.Verdict == WriteMovement {
			r.views.mu.Lock()
			r.inChange = r.views.open > 0
			r.views.mu.Unlock()
		}
		return d, err
	})
}

func TestMovementsRunInsideAViewChange(t *testing.T) {
	ctx := context.Background()
	fr := newFakeRepo()
	alice, bob := fr.add("alice", ToMinor(100)), fr.add("bob", 0)
	views := &fakeViews{commitBy: time.Minute}
	repo := &viewsRepo{fakeRepo: fr, views: views}
	svc := New(repo, nil).WithViews(views, nil)

	before := time.Now()
	if _, err := svc.Transfer(ctx, TransferCmd{FromUserID: alice.String(), ToUsername: "bob", Amount: 5, IdempotencyKey: "k1"}); err != nil {
		t.Fatal(err)
	}
	if !repo.inChange {
		t.Fatal("the transfer was applied outside a view change")
	}
	if by := fr.decisions[0].CommitBy; by.IsZero() || by.Before(before) || by.After(time.Now().Add(time.Minute)) {
		t.Fatalf("movement commits by %v, want the change's CommitBy", by)
	}
	want := map[string]bool{alice.String(): true, bob.String(): true}
	if got := views.begun[0]; len(got) != 2 || !want[got[0]] || !want[got[1]] {
		t.Fatalf("change covered %v, want both parties", got)
	}
	if _, err := svc.Charge(ctx, ChargeCmd{UserID: alice.String(), Amount: 10, IdempotencyKey: "o1", Reason: "pen"}); err != nil {
		t.Fatal(err)
	}
	if got := views.begun[1]; len(got) != 1 || got[0] != alice.String() {
		t.Fatalf("charge change covered %v, want the payer", got)
	}
	if views.ended != 2 || views.open != 0 {
		t.Fatalf("ended %d changes (%d open), want every change ended", views.ended, views.open)
	}
	// A replay moves nothing and needs no change.
	if _, err := svc.Transfer(ctx, TransferCmd{FromUserID: alice.String(), ToUsername: "bob", Amount: 5, IdempotencyKey: "k1"}); err != nil {
		t.Fatal(err)
	}
	if len(views.begun) != 2 {
		t.Fatalf("a replay began a change: %v", views.begun)
	}
}

func TestNothingMovesWhenTheViewCacheCannotBeTold(t *testing.T) {
	ctx := context.Background()
	fr := newFakeRepo()
	alice := fr.add("alice", ToMinor(100))
	fr.add("bob", 0)
	views := &fakeViews{commitBy: time.Minute, beginErr: errors.New("redis down")}
	svc := New(fr, nil).WithViews(views, nil)
	_, err := svc.Transfer(ctx, TransferCmd{FromUserID: alice.String(), ToUsername: "bob", Amount: 5, IdempotencyKey: "k1"})
	if !errors.Is(err, ErrViewsUnavailable) || KindOf(err) != KindUnavailable {
		t.Fatalf("transfer with the cache out of reach: %v, want ErrViewsUnavailable", err)
	}
	if len(fr.moves) != 0 || fr.balances[alice] != ToMinor(100) {
		t.Fatalf("something moved: %v", fr.moves)
	}
	if views.ended != 1 {
		t.Fatalf("the failed change was not ended (%d)", views.ended)
	}
	if _, ok := fr.txs["transfer:"+alice.String()+":k1"]; ok {
		t.Fatal("the key was recorded")
	}
}
