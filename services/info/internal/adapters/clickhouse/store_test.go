package clickhouse_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/testenv"
	"github.com/merchshop/merchshop/services/info/internal/adapters/clickhouse"
	"github.com/merchshop/merchshop/services/info/internal/adapters/consumer"
	"github.com/merchshop/merchshop/services/info/internal/app"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore gives the test its own table in the test database.
func openStore(t *testing.T) *clickhouse.Store {
	t.Helper()
	addr := testenv.Need(t, "CLICKHOUSE_ADDR")
	db := testenv.Need(t, "CLICKHOUSE_TEST_DATABASE")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	table := "history_t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	s, err := clickhouse.Open(ctx, clickhouse.Config{Addr: addr, Database: db, Table: table, Wait: 10 * time.Second}, quiet())
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Drop(ctx); err != nil {
			t.Logf("drop %s: %v", table, err)
		}
		_ = s.Close()
	})
	return s
}

func record(t *testing.T, tx events.Transaction) *kgo.Record {
	t.Helper()
	b, err := json.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: events.TopicTransactions, Value: b}
}

func TestRedeliveredEventAppearsOnce(t *testing.T) {
	s := openStore(t)
	h := consumer.NewHandler(s, quiet())
	svc := app.New(nil, nil, s)
	ctx := context.Background()
	user := uuid.NewString()
	tx := events.Transaction{
		EventID: uuid.NewString(), TransactionID: uuid.NewString(), Kind: events.KindGrant,
		ToUserID: user, ToUsername: "neo", Amount: 1000, Reason: "welcome", CreatedAt: time.Now().UTC(),
	}
	// Two deliveries in two batches (two parts on disk), and a duplicate
	// within one batch.
	if err := h.Handle(ctx, []*kgo.Record{record(t, tx)}); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(ctx, []*kgo.Record{record(t, tx), record(t, tx)}); err != nil {
		t.Fatal(err)
	}
	page, err := svc.GetHistory(ctx, user, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 {
		t.Fatalf("entries = %+v, want the event once", page.Entries)
	}
	e := page.Entries[0]
	if e.TransactionID != tx.TransactionID || e.Kind != app.KindGrant || e.Amount != 1000 || e.Counterpart != "welcome" ||
		e.CreatedAt.UnixMilli() != tx.CreatedAt.UnixMilli() || page.NextCursor != "" {
		t.Fatalf("entry = %+v", page)
	}
	totals, err := s.TotalsBefore(ctx, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := totals[user]; got != (clickhouse.Totals{Count: 1, Sum: 1000}) {
		t.Fatalf("totals = %+v", got)
	}
}

func TestPagingWithCursor(t *testing.T) {
	s := openStore(t)
	h := consumer.NewHandler(s, quiet())
	svc := app.New(nil, nil, s)
	ctx := context.Background()
	user, other := uuid.NewString(), uuid.NewString()
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var records []*kgo.Record
	for i := range 45 {
		at := base.Add(time.Duration(i) * time.Millisecond)
		if i%10 == 0 && i > 0 {
			at = base.Add(time.Duration(i-1) * time.Millisecond) // ties on time are ordered by id
		}
		records = append(records,
			record(t, events.Transaction{TransactionID: uuid.NewString(), Kind: events.KindCredit, ToUserID: user, Amount: int64(i + 1), Reason: "r", CreatedAt: at}),
			record(t, events.Transaction{TransactionID: uuid.NewString(), Kind: events.KindCredit, ToUserID: other, Amount: 1, Reason: "r", CreatedAt: at}))
	}
	if err := h.Handle(ctx, records); err != nil {
		t.Fatal(err)
	}

	var (
		sizes  []int
		all    []app.Entry
		cursor string
	)
	for range 10 {
		page, err := svc.GetHistory(ctx, user, cursor, 20)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Entries))
		all = append(all, page.Entries...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if fmt.Sprint(sizes) != "[20 20 5]" {
		t.Fatalf("page sizes = %v, want [20 20 5]", sizes)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if seen[e.TransactionID] {
			t.Fatalf("duplicate %s", e.TransactionID)
		}
		seen[e.TransactionID] = true
		if i > 0 {
			prev := all[i-1]
			pm, em := prev.CreatedAt.UnixMilli(), e.CreatedAt.UnixMilli()
			if pm < em || (pm == em && prev.TransactionID <= e.TransactionID) {
				t.Fatalf("not newest first at %d: %+v then %+v", i, prev, e)
			}
		}
	}
	if all[0].Amount != 45 || len(seen) != 45 {
		t.Fatalf("first = %+v, distinct = %d", all[0], len(seen))
	}
}

func TestTransferRowsForBothUsers(t *testing.T) {
	s := openStore(t)
	h := consumer.NewHandler(s, quiet())
	svc := app.New(nil, nil, s)
	ctx := context.Background()
	alice, bob := uuid.NewString(), uuid.NewString()
	tx := events.Transaction{
		TransactionID: uuid.NewString(), Kind: events.KindTransfer, FromUserID: alice, FromUsername: "alice",
		ToUserID: bob, ToUsername: "bob", Amount: 30, CreatedAt: time.Now().UTC(),
	}
	purchase := events.Transaction{
		TransactionID: uuid.NewString(), Kind: events.KindPurchase, FromUserID: alice, Amount: 80, Reason: "t-shirt",
		CreatedAt: tx.CreatedAt.Add(time.Millisecond),
	}
	malformed := &kgo.Record{Topic: events.TopicTransactions, Value: []byte("{not json")}
	unknownKind := record(t, events.Transaction{TransactionID: "x", Kind: "gift", ToUserID: bob, Amount: 5, CreatedAt: time.Now()})
	if err := h.Handle(ctx, []*kgo.Record{malformed, record(t, tx), unknownKind, record(t, purchase)}); err != nil {
		t.Fatal(err)
	}
	pa, err := svc.GetHistory(ctx, alice, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pa.Entries) != 2 ||
		pa.Entries[0].Kind != app.KindPurchase || pa.Entries[0].Amount != -80 || pa.Entries[0].Counterpart != "t-shirt" ||
		pa.Entries[1].Kind != app.KindTransferOut || pa.Entries[1].Amount != -30 || pa.Entries[1].Counterpart != "bob" {
		t.Fatalf("alice = %+v", pa.Entries)
	}
	pb, err := svc.GetHistory(ctx, bob, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pb.Entries) != 1 || pb.Entries[0].Kind != app.KindTransferIn || pb.Entries[0].Amount != 30 ||
		pb.Entries[0].Counterpart != "alice" || pb.Entries[0].TransactionID != tx.TransactionID {
		t.Fatalf("bob = %+v", pb.Entries)
	}
}
