package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/outbox"
	pg "github.com/merchshop/merchshop/pkg/postgres"
	"github.com/merchshop/merchshop/pkg/postgres/pgtest"
	"github.com/merchshop/merchshop/services/merch/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/merch/internal/app"
	"github.com/merchshop/merchshop/services/merch/migrations"
)

func newStore(t *testing.T) (*postgres.Store, *pgxpool.Pool, *int) {
	t.Helper()
	pool := pgtest.Pool(t, "MERCH_TEST_DATABASE_URL", 20)
	ctx := context.Background()
	if err := outbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, pool, migrations.FS, ".", "schema_version"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	notified := new(int)
	return postgres.New(pool, func() { mu.Lock(); *notified++; mu.Unlock() }), pool, notified
}

func TestCatalogSeeded(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	items, err := s.ListItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []app.Item{
		{Name: "book", Price: 50}, {Name: "cup", Price: 20}, {Name: "hoody", Price: 300},
		{Name: "pen", Price: 10}, {Name: "pink-hoody", Price: 500}, {Name: "powerbank", Price: 200},
		{Name: "socks", Price: 10}, {Name: "t-shirt", Price: 80}, {Name: "umbrella", Price: 200},
		{Name: "wallet", Price: 50},
	}
	if len(items) != len(want) {
		t.Fatalf("items = %v", items)
	}
	for i := range want {
		if items[i] != want[i] {
			t.Fatalf("items[%d] = %v, want %v (all: %v)", i, items[i], want[i], items)
		}
	}
	it, err := s.GetItem(ctx, "pink-hoody")
	if err != nil || it.Price != 500 {
		t.Fatalf("get = %v, %v", it, err)
	}
	if _, err := s.GetItem(ctx, "yacht"); !errors.Is(err, app.ErrUnknownItem) {
		t.Fatalf("unknown item err = %v", err)
	}
}

func newOrder(user, key string) app.Order {
	return app.Order{ID: uuid.NewString(), UserID: user, Item: "cup", Price: 20, IdempotencyKey: key}
}

func TestOrderLifecycle(t *testing.T) {
	s, pool, notified := newStore(t)
	ctx := context.Background()
	user := uuid.NewString()
	o := newOrder(user, "k1")
	got, created, err := s.CreateOrder(ctx, o)
	if err != nil || !created || got.ID != o.ID || got.Status != app.StatusPending || got.CreatedAt.IsZero() {
		t.Fatalf("create = %+v, %v, %v", got, created, err)
	}
	// Same user and key: the first order comes back.
	again, created, err := s.CreateOrder(ctx, newOrder(user, "k1"))
	if err != nil || created || again.ID != o.ID {
		t.Fatalf("second create = %+v, %v, %v", again, created, err)
	}
	// Same key, other user: a different order.
	if _, created, err := s.CreateOrder(ctx, newOrder(uuid.NewString(), "k1")); err != nil || !created {
		t.Fatalf("other user's order: %v, %v", created, err)
	}

	ev := events.PurchaseCompleted{EventID: o.ID, OrderID: o.ID, UserID: user, Item: "cup", Price: 20, CreatedAt: time.Now().UTC()}
	done, err := s.CompleteOrder(ctx, o.ID, ev)
	if err != nil || done.Status != app.StatusCompleted {
		t.Fatalf("complete = %+v, %v", done, err)
	}
	// Completing again queues nothing more.
	if done, err := s.CompleteOrder(ctx, o.ID, ev); err != nil || done.Status != app.StatusCompleted {
		t.Fatalf("complete again = %+v, %v", done, err)
	}
	// A failure cannot overwrite a completed order.
	if got, err := s.FailOrder(ctx, o.ID, "insufficient funds"); err != nil || got.Status != app.StatusCompleted {
		t.Fatalf("fail completed = %+v, %v", got, err)
	}
	var (
		n          int
		topic, key string
		payload    []byte
	)
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("outbox rows = %d, %v", n, err)
	}
	if err := pool.QueryRow(ctx, `SELECT topic, key, payload FROM outbox`).Scan(&topic, &key, &payload); err != nil {
		t.Fatal(err)
	}
	var decoded events.PurchaseCompleted
	if err := json.Unmarshal(payload, &decoded); err != nil {
		t.Fatal(err)
	}
	if topic != events.TopicPurchases || key != user || decoded.OrderID != o.ID || decoded.Price != 20 {
		t.Fatalf("outbox = %s %s %+v", topic, key, decoded)
	}
	if *notified != 1 {
		t.Fatalf("relay notified %d times, want 1", *notified)
	}

	// pending -> failed keeps the failure; failed stays failed.
	f := newOrder(user, "k2")
	if _, _, err := s.CreateOrder(ctx, f); err != nil {
		t.Fatal(err)
	}
	got, err = s.FailOrder(ctx, f.ID, "insufficient funds")
	if err != nil || got.Status != app.StatusFailed || got.Failure != "insufficient funds" {
		t.Fatalf("fail = %+v, %v", got, err)
	}
	got, err = s.FailOrder(ctx, f.ID, "something else")
	if err != nil || got.Failure != "insufficient funds" {
		t.Fatalf("fail again = %+v, %v", got, err)
	}
	replay, created, err := s.CreateOrder(ctx, newOrder(user, "k2"))
	if err != nil || created || replay.Status != app.StatusFailed || replay.ID != f.ID {
		t.Fatalf("replay of failed = %+v, %v, %v", replay, created, err)
	}
}

func TestOrderConstraints(t *testing.T) {
	_, pool, _ := newStore(t)
	ctx := context.Background()
	user := uuid.NewString()
	insert := func(id, key, status string, price int64) error {
		_, err := pool.Exec(ctx, `INSERT INTO orders (id, user_id, item, price, idempotency_key, status) VALUES ($1, $2, 'cup', $3, $4, $5)`,
			id, user, price, key, status)
		return err
	}
	if err := insert(uuid.NewString(), "a", "pending", 20); err != nil {
		t.Fatal(err)
	}
	if err := insert(uuid.NewString(), "a", "pending", 20); !pg.IsUniqueViolation(err) {
		t.Fatalf("duplicate key: %v", err)
	}
	if err := insert(uuid.NewString(), "b", "shipped", 20); !pg.IsCheckViolation(err) {
		t.Fatalf("bad status: %v", err)
	}
	if err := insert(uuid.NewString(), "c", "pending", 0); !pg.IsCheckViolation(err) {
		t.Fatalf("zero price: %v", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO items (name, price) VALUES ('free', 0)`); !pg.IsCheckViolation(err) {
		t.Fatalf("free item: %v", err)
	}
}

func TestConcurrentCreateWithOneKey(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	user := uuid.NewString()
	var wg sync.WaitGroup
	ids := make(chan string, 10)
	for range 10 {
		wg.Go(func() {
			o, _, err := s.CreateOrder(ctx, newOrder(user, "same"))
			if err != nil {
				t.Error(err)
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
	if len(distinct) != 1 {
		t.Fatalf("ids = %v", distinct)
	}
}

func TestClaimPending(t *testing.T) {
	s, pool, _ := newStore(t)
	ctx := context.Background()
	user := uuid.NewString()
	var old []string
	for i := range 5 {
		o := newOrder(user, "old"+string(rune('a'+i)))
		if _, _, err := s.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		old = append(old, o.ID)
	}
	young := newOrder(user, "young")
	if _, _, err := s.CreateOrder(ctx, young); err != nil {
		t.Fatal(err)
	}
	doneOrder := newOrder(user, "done")
	if _, _, err := s.CreateOrder(ctx, doneOrder); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FailOrder(ctx, doneOrder.ID, "insufficient funds"); err != nil {
		t.Fatal(err)
	}
	// Age the old ones and the failed one.
	if _, err := pool.Exec(ctx, `UPDATE orders SET updated_at = now() - interval '1 minute' WHERE id = ANY($1) OR id = $2`, old, doneOrder.ID); err != nil {
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
		if o.Status != app.StatusPending || seen[o.ID] {
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
}
