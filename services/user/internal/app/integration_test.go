package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/merchshop/merchshop/services/user/internal/adapters/bcrypt"
	"github.com/merchshop/merchshop/services/user/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/user/internal/app"
	"github.com/merchshop/merchshop/services/user/internal/testdb"
)

// newRealService wires the use cases to the real test database and real
// bcrypt (at its minimum cost, to keep the test fast), without a cache, so
// that every login really compares hashes. Its pool lets every login of
// these tests wait (they test the races, not the pool's bound).
func newRealService(t *testing.T) (*app.Service, *postgres.Store) {
	t.Helper()
	store := postgres.New(testdb.Pool(t))
	h, err := bcrypt.New(bcrypt.Config{Cost: 4, MaxWaiting: 64, MaxWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return app.New(store, h, nil, quietLog()), store
}

type loginResult struct {
	id      string
	created bool
	err     error
}

func loginAll(svc *app.Service, username string, passwords []string) []loginResult {
	results := make([]loginResult, len(passwords))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, pw := range passwords {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id, created, err := svc.CreateIfNotExists(context.Background(), username, pw)
			results[i] = loginResult{id, created, err}
		}()
	}
	close(start)
	wg.Wait()
	return results
}

func TestConcurrentFirstLoginsCreateOneUser(t *testing.T) {
	svc, store := newRealService(t)
	passwords := make([]string, 20)
	for i := range passwords {
		passwords[i] = "same password"
	}
	results := loginAll(svc, "newcomer", passwords)

	u, err := store.UserByName(context.Background(), "newcomer")
	if err != nil {
		t.Fatal(err)
	}
	createdCount := 0
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("login %d: %v", i, r.err)
		}
		if r.id != u.ID {
			t.Fatalf("login %d got user id %s, the user is %s", i, r.id, u.ID)
		}
		if r.created {
			createdCount++
		}
	}
	if createdCount != 1 {
		t.Fatalf("%d logins report created, want exactly 1", createdCount)
	}
}

func TestConcurrentFirstLoginsWithOneDifferentPassword(t *testing.T) {
	svc, store := newRealService(t)
	passwords := make([]string, 20)
	for i := range passwords {
		passwords[i] = "majority"
	}
	const odd = 7
	passwords[odd] = "minority"
	results := loginAll(svc, "contested", passwords)

	u, err := store.UserByName(context.Background(), "contested")
	if err != nil {
		t.Fatal(err)
	}
	h, err := bcrypt.New(bcrypt.Config{Cost: 4})
	if err != nil {
		t.Fatal(err)
	}
	minority, err := h.Matches(context.Background(), u.PasswordHash, "minority")
	if err != nil {
		t.Fatal(err)
	}
	winner := "majority"
	if minority {
		winner = "minority"
	}
	createdCount := 0
	for i, r := range results {
		if passwords[i] == winner {
			if r.err != nil || r.id != u.ID {
				t.Fatalf("login %d with the winning password: id %s err %v (user %s)", i, r.id, r.err, u.ID)
			}
			if r.created {
				createdCount++
			}
			continue
		}
		if !errors.Is(r.err, app.ErrInvalidCredentials) {
			t.Fatalf("login %d with the losing password: id %s err %v, want ErrInvalidCredentials", i, r.id, r.err)
		}
	}
	if createdCount != 1 {
		t.Fatalf("%d logins report created, want exactly 1", createdCount)
	}
	t.Logf("winning password: %s", winner)
}

func TestLoginAgainstTheDatabase(t *testing.T) {
	ctx := context.Background()
	svc, _ := newRealService(t)
	id, created, err := svc.CreateIfNotExists(ctx, "dave", "s3cret pw")
	if err != nil || !created {
		t.Fatalf("register: created %v err %v", created, err)
	}
	if got, created, err := svc.CreateIfNotExists(ctx, "dave", "s3cret pw"); err != nil || created || got != id {
		t.Fatalf("second login: %s %v %v", got, created, err)
	}
	if _, _, err := svc.CreateIfNotExists(ctx, "dave", "wrong"); !errors.Is(err, app.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
}
