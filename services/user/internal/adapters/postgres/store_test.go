package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/services/user/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/user/internal/app"
	"github.com/merchshop/merchshop/services/user/internal/testdb"
)

func TestCreateUserWritesOutboxEvent(t *testing.T) {
	ctx := context.Background()
	pool := testdb.Pool(t)
	s := postgres.New(pool)

	u := app.User{ID: uuid.NewString(), Username: "alice", PasswordHash: "h1"}
	created, err := s.CreateUser(ctx, u)
	if err != nil || !created {
		t.Fatalf("CreateUser: created %v err %v", created, err)
	}
	// The same name again changes nothing.
	created, err = s.CreateUser(ctx, app.User{ID: uuid.NewString(), Username: "alice", PasswordHash: "h2"})
	if err != nil || created {
		t.Fatalf("CreateUser duplicate: created %v err %v", created, err)
	}
	got, err := s.UserByName(ctx, "alice")
	if err != nil || got != u {
		t.Fatalf("UserByName = %+v, %v; want %+v", got, err, u)
	}

	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE username = 'alice'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d users named alice (%v), want 1", n, err)
	}
}

func TestUserByNameUnknown(t *testing.T) {
	s := postgres.New(testdb.Pool(t))
	if _, err := s.UserByName(context.Background(), "nobody"); !errors.Is(err, app.ErrUnknownUser) {
		t.Fatalf("err = %v, want ErrUnknownUser", err)
	}
}

func TestGrantIsIdempotentByOrder(t *testing.T) {
	ctx := context.Background()
	pool := testdb.Pool(t)
	s := postgres.New(pool)
	u := app.User{ID: uuid.NewString(), Username: "bob", PasswordHash: "h"}
	if _, err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}

	inv, err := s.Inventory(ctx, u.ID)
	if err != nil || inv == nil || len(inv) != 0 {
		t.Fatalf("empty inventory = %#v, %v; want an empty non-nil list", inv, err)
	}

	order1, order2, order3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	steps := []struct {
		g    app.Grant
		want bool
	}{
		{app.Grant{OrderID: order1, UserID: u.ID, Item: "cup"}, true},
		{app.Grant{OrderID: order1, UserID: u.ID, Item: "cup"}, false}, // replay
		{app.Grant{OrderID: order2, UserID: u.ID, Item: "cup"}, true},
		{app.Grant{OrderID: order3, UserID: u.ID, Item: "book"}, true},
		{app.Grant{OrderID: order3, UserID: u.ID, Item: "book"}, false}, // replay
	}
	for i, st := range steps {
		granted, err := s.Grant(ctx, st.g)
		if err != nil || granted != st.want {
			t.Fatalf("step %d: granted %v err %v, want %v", i, granted, err, st.want)
		}
	}
	inv, err = s.Inventory(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []app.InventoryItem{{Item: "book", Quantity: 1}, {Item: "cup", Quantity: 2}}
	if len(inv) != len(want) || inv[0] != want[0] || inv[1] != want[1] {
		t.Fatalf("inventory = %+v, want %+v (ordered by item)", inv, want)
	}

	// A replayed order id with another item is refused, not applied.
	if _, err := s.Grant(ctx, app.Grant{OrderID: order1, UserID: u.ID, Item: "pen"}); !errors.Is(err, app.ErrOrderConflict) {
		t.Fatalf("conflicting replay: %v, want ErrOrderConflict", err)
	}
	// An unknown user is reported as such.
	if _, err := s.Grant(ctx, app.Grant{OrderID: uuid.NewString(), UserID: uuid.NewString(), Item: "pen"}); !errors.Is(err, app.ErrUnknownUser) {
		t.Fatalf("unknown user: %v, want ErrUnknownUser", err)
	}
}

func TestConcurrentGrantsOfOneOrderApplyOnce(t *testing.T) {
	ctx := context.Background()
	s := postgres.New(testdb.Pool(t))
	u := app.User{ID: uuid.NewString(), Username: "carol", PasswordHash: "h"}
	if _, err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	order := uuid.NewString()
	const n = 10
	results := make(chan error, n)
	granted := make(chan bool, n)
	for range n {
		go func() {
			ok, err := s.Grant(ctx, app.Grant{OrderID: order, UserID: u.ID, Item: "hoody"})
			granted <- ok
			results <- err
		}()
	}
	wins := 0
	for range n {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
		if <-granted {
			wins++
		}
	}
	inv, err := s.Inventory(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if wins != 1 || len(inv) != 1 || inv[0].Quantity != 1 {
		t.Fatalf("%d grants won, inventory %+v; want exactly one hoody", wins, inv)
	}
}
