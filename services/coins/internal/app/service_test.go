package app

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// fakeRepo is an in-memory Repository for the use-case rules; the real
// concurrency is tested against PostgreSQL in adapters/postgres.
type fakeRepo struct {
	mu       sync.Mutex
	names    map[string]uuid.UUID
	balances map[uuid.UUID]int64
	txs      map[string]StoredTransaction
	moves    []Movement
	// raceKey makes the next Move behave as if a concurrent request had
	// just recorded the key with this transaction.
	raceKey   *StoredTransaction
	moveErr   error
	decisions []Decision
}

func newFakeRepo() *fakeRepo {
	return &fakeRepo{names: map[string]uuid.UUID{}, balances: map[uuid.UUID]int64{}, txs: map[string]StoredTransaction{}}
}

func (f *fakeRepo) add(name string, balanceMinor int64) uuid.UUID {
	id := uuid.New()
	f.names[name] = id
	f.balances[id] = balanceMinor
	return id
}

func (f *fakeRepo) OpenAccount(_ context.Context, id uuid.UUID, name string, grant int64, key, hash string) (int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.balances[id]; ok {
		return b, false, nil
	}
	if _, ok := f.names[name]; ok {
		return 0, false, ErrUsernameTaken
	}
	f.names[name], f.balances[id] = id, grant
	f.txs[key] = StoredTransaction{ID: uuid.New(), RequestHash: hash}
	return grant, true, nil
}

// Move locks (the fake's mutex), loads what the real store loads, and
// writes what decide decided.
func (f *fakeRepo) Move(ctx context.Context, req MoveRequest, decide Decide) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.moveErr != nil {
		return f.moveErr
	}
	if f.raceKey != nil {
		// A concurrent request recorded the key just before this one took
		// the lock.
		f.txs[req.Key] = *f.raceKey
		f.raceKey = nil
	}
	account := func(id uuid.UUID) *Account {
		for name, nid := range f.names {
			if nid == id {
				if b, ok := f.balances[id]; ok {
					return &Account{ID: id, Username: name, Balance: b}
				}
			}
		}
		return nil
	}
	var l Locked
	if req.From != uuid.Nil {
		l.From = account(req.From)
	}
	switch {
	case req.To != uuid.Nil:
		l.To = account(req.To)
	case req.ToName != "":
		if id, ok := f.names[req.ToName]; ok {
			l.To = account(id)
		}
	}
	if t, ok := f.txs[req.Key]; ok {
		l.Outcome = &t
	}
	d, err := decide(ctx, l)
	if err != nil {
		return err
	}
	f.decisions = append(f.decisions, d)
	m := d.Movement
	switch d.Verdict {
	case WriteRefusal:
		f.txs[m.Key] = StoredTransaction{RequestHash: m.RequestHash, Refusal: ErrInsufficientFunds}
	case WriteMovement:
		if m.From != uuid.Nil {
			f.balances[m.From] -= m.Amount
		}
		if m.To != uuid.Nil {
			f.balances[m.To] += m.Amount
		}
		f.txs[m.Key] = StoredTransaction{ID: m.ID, RequestHash: m.RequestHash}
		f.moves = append(f.moves, m)
	}
	return nil
}

func (f *fakeRepo) balance(id uuid.UUID) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.balances[id]
	if !ok {
		return 0, ErrAccountNotFound
	}
	return b, nil
}

// Overview answers the balance and a fixed history (the service's part is
// only the conversion to coins).
func (f *fakeRepo) Overview(_ context.Context, id uuid.UUID) (Overview, error) {
	b, err := f.balance(id)
	if err != nil {
		return Overview{}, err
	}
	return Overview{Balance: b, History: History{Received: []Counterpart{{"bob", 250}}, Sent: []Counterpart{}}}, nil
}

type countNotifier struct{ n int }

func (c *countNotifier) Notify() { c.n++ }

func TestTransferRules(t *testing.T) {
	ctx := context.Background()
	repo := newFakeRepo()
	alice := repo.add("alice", 100_000)
	repo.add("bob", 0)
	n := &countNotifier{}
	svc := New(repo, n)

	cases := []struct {
		name string
		cmd  TransferCmd
		want error
	}{
		{"zero amount", TransferCmd{alice.String(), "bob", 0, "k"}, ErrAmountTooSmall},
		{"negative amount", TransferCmd{alice.String(), "bob", -1, "k"}, ErrAmountTooSmall},
		{"huge amount", TransferCmd{alice.String(), "bob", MaxAmount + 1, "k"}, ErrAmountTooLarge},
		{"bad sender", TransferCmd{"nope", "bob", 1, "k"}, ErrInvalidUserID},
		{"no recipient", TransferCmd{alice.String(), "", 1, "k"}, ErrRecipientRequired},
		{"no key", TransferCmd{alice.String(), "bob", 1, ""}, ErrKeyRequired},
		{"unknown recipient", TransferCmd{alice.String(), "carol", 1, "k1"}, ErrUnknownRecipient},
		{"impossible recipient name", TransferCmd{alice.String(), "a b", 1, "k1"}, ErrUnknownRecipient},
		{"self", TransferCmd{alice.String(), "alice", 1, "k2"}, ErrSelfTransfer},
		{"insufficient", TransferCmd{alice.String(), "bob", 1001, "k3"}, ErrInsufficientFunds},
		{"sender without account", TransferCmd{uuid.NewString(), "bob", 1, "k4"}, ErrAccountNotFound},
	}
	for _, c := range cases {
		if _, err := svc.Transfer(ctx, c.cmd); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if len(repo.moves) != 0 || n.n != 0 {
		t.Fatalf("refused requests moved money: %d moves, %d notifications", len(repo.moves), n.n)
	}

	res, err := svc.Transfer(ctx, TransferCmd{alice.String(), "bob", 10, "k5"})
	if err != nil || res.Replayed || res.TransactionID == "" {
		t.Fatalf("transfer: %+v, %v", res, err)
	}
	m := repo.moves[0]
	if m.Amount != 1000 || m.Key != "transfer:"+alice.String()+":k5" || m.To != repo.names["bob"] {
		t.Errorf("movement %+v", m)
	}
	if n.n != 1 {
		t.Errorf("notifications = %d, want 1", n.n)
	}

	again, err := svc.Transfer(ctx, TransferCmd{alice.String(), "bob", 10, "k5"})
	if err != nil || !again.Replayed || again.TransactionID != res.TransactionID {
		t.Errorf("replay: %+v, %v", again, err)
	}
	if len(repo.moves) != 1 || n.n != 1 {
		t.Errorf("replay moved money")
	}
	if _, err := svc.Transfer(ctx, TransferCmd{alice.String(), "bob", 11, "k5"}); !errors.Is(err, ErrKeyReused) {
		t.Errorf("reused key, other amount: %v", err)
	}
}

func TestTransferLostKeyRace(t *testing.T) {
	ctx := context.Background()
	repo := newFakeRepo()
	alice := repo.add("alice", 100_000)
	repo.add("bob", 0)
	svc := New(repo, nil)

	cmd := TransferCmd{alice.String(), "bob", 5, "race"}
	winner := uuid.New()
	repo.raceKey = &StoredTransaction{ID: winner, RequestHash: requestHash("transfer", alice.String(), "bob", 500)}
	res, err := svc.Transfer(ctx, cmd)
	if err != nil || !res.Replayed || res.TransactionID != winner.String() {
		t.Fatalf("lost race: %+v, %v; want the winner %s replayed", res, err, winner)
	}

	repo.raceKey = &StoredTransaction{ID: uuid.New(), RequestHash: "other"}
	if _, err := svc.Transfer(ctx, TransferCmd{alice.String(), "bob", 5, "race2"}); !errors.Is(err, ErrKeyReused) {
		t.Errorf("lost race to a different request: %v", err)
	}
}

func TestChargeAndCredit(t *testing.T) {
	ctx := context.Background()
	repo := newFakeRepo()
	alice := repo.add("alice", 5_000)
	svc := New(repo, nil)

	if _, err := svc.Charge(ctx, ChargeCmd{alice.String(), 51, "order:0", "t-shirt"}); !errors.Is(err, ErrInsufficientFunds) {
		t.Errorf("overcharge: %v", err)
	}
	res, err := svc.Charge(ctx, ChargeCmd{alice.String(), 50, "order:1", "book"})
	if err != nil {
		t.Fatal(err)
	}
	m := repo.moves[0]
	if m.Kind != "purchase" || m.Key != "charge:order:1" || m.From != alice || m.To != uuid.Nil || m.Amount != 5000 || m.Reason != "book" {
		t.Errorf("charge movement %+v", m)
	}
	again, err := svc.Charge(ctx, ChargeCmd{alice.String(), 50, "order:1", "book"})
	if err != nil || !again.Replayed || again.TransactionID != res.TransactionID {
		t.Errorf("charge replay %+v %v", again, err)
	}
	if _, err := svc.Charge(ctx, ChargeCmd{alice.String(), 10, "order:1", "pen"}); !errors.Is(err, ErrKeyReused) {
		t.Errorf("charge key reuse: %v", err)
	}

	if _, err := svc.Credit(ctx, ChargeCmd{alice.String(), 3, "order:1", "refund"}); err != nil {
		t.Errorf("credit shares the charge's key space: %v", err)
	}
	if got := repo.moves[1]; got.Kind != "credit" || got.Key != "credit:order:1" || got.To != alice || got.From != uuid.Nil {
		t.Errorf("credit movement %+v", got)
	}
	if _, err := svc.Credit(ctx, ChargeCmd{uuid.NewString(), 3, "x", ""}); !errors.Is(err, ErrAccountNotFound) {
		t.Errorf("credit to nobody: %v", err)
	}
	if _, err := svc.Charge(ctx, ChargeCmd{alice.String(), 1, "", ""}); !errors.Is(err, ErrKeyRequired) {
		t.Errorf("charge without key: %v", err)
	}
	if o, _ := svc.Overview(ctx, alice.String()); o.Balance != 3 {
		t.Errorf("balance = %d, want 3", o.Balance)
	}
}

func TestOpenAccountAndReads(t *testing.T) {
	ctx := context.Background()
	repo := newFakeRepo()
	n := &countNotifier{}
	svc := New(repo, n)
	id := uuid.NewString()

	if _, err := svc.OpenAccount(ctx, "x", "alice"); !errors.Is(err, ErrInvalidUserID) {
		t.Errorf("bad id: %v", err)
	}
	if _, err := svc.OpenAccount(ctx, id, "a b"); !errors.Is(err, ErrInvalidUsername) {
		t.Errorf("bad name: %v", err)
	}
	res, err := svc.OpenAccount(ctx, id, "alice")
	if err != nil || !res.Created || res.Balance != 1000 {
		t.Fatalf("open: %+v %v", res, err)
	}
	res, err = svc.OpenAccount(ctx, id, "alice")
	if err != nil || res.Created || res.Balance != 1000 {
		t.Fatalf("reopen: %+v %v", res, err)
	}
	if n.n != 1 {
		t.Errorf("notifications = %d, want 1", n.n)
	}
	if _, err := svc.Overview(ctx, uuid.NewString()); !errors.Is(err, ErrAccountNotFound) {
		t.Errorf("overview of nobody: %v", err)
	}
	o, err := svc.Overview(ctx, id)
	h := o.History
	if err != nil || o.Balance != 1000 || len(h.Received) != 1 || h.Received[0].Amount != 2 || h.Sent == nil {
		t.Errorf("history in coins with empty lists: %+v %v", h, err)
	}
}

func TestBusyIsPassedThrough(t *testing.T) {
	repo := newFakeRepo()
	alice := repo.add("alice", 100_000)
	repo.add("bob", 0)
	repo.moveErr = errors.Join(ErrBusy, errors.New("40001 x 16"))
	_, err := New(repo, nil).Transfer(context.Background(), TransferCmd{alice.String(), "bob", 1, "k"})
	if KindOf(err) != KindBusy {
		t.Errorf("got %v, want busy", err)
	}
}
