package ydb

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	ydbsdk "github.com/ydb-platform/ydb-go-sdk/v3"
	"github.com/ydb-platform/ydb-go-sdk/v3/query"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/services/merch/internal/adapters/storetest"
)

// openTestDB connects to the YDB named by YDB_ENDPOINT and YDB_DATABASE
// (default /local), or skips.
func openTestDB(t *testing.T) *ydbsdk.Driver {
	t.Helper()
	endpoint := os.Getenv("YDB_ENDPOINT")
	if endpoint == "" {
		t.Skip("YDB_ENDPOINT is not set: the YDB store is tested against a real YDB only (CI runs it with a YDB container)")
	}
	database := os.Getenv("YDB_DATABASE")
	if database == "" {
		database = "/local"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := Open(ctx, endpoint, database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = db.Close(ctx)
	})
	return db
}

// newTestStore creates the store's tables in a directory of their own,
// dropped when the test ends.
func newTestStore(t *testing.T, db *ydbsdk.Driver, notify func()) *Store {
	t.Helper()
	id := uuid.New()
	cfg := Config{Prefix: "merch_test_" + hex.EncodeToString(id[:8])}
	s, err := New(db, cfg, notify)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, table := range Tables() {
			if err := db.Query().Exec(ctx, s.t.yql("DROP TABLE "+table+";")); err != nil && !ydbsdk.IsOperationErrorSchemeError(err) {
				t.Logf("drop table %s/%s: %v", s.Dir(), table, err)
			}
		}
		if err := db.Scheme().RemoveDirectory(ctx, s.Dir()); err != nil {
			t.Logf("remove directory %s: %v", s.Dir(), err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// A second start finds everything in place.
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	return s
}

func TestStoreContract(t *testing.T) {
	db := openTestDB(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		var notified atomic.Int64
		s := newTestStore(t, db, func() { notified.Add(1) })
		return storetest.Harness{
			Store: s,
			Order: s.GetOrder,
			Age: func(ctx context.Context, d time.Duration, ids ...string) error {
				return db.Query().Exec(ctx, s.t.yql(`
					DECLARE $ids AS List<Utf8>;
					DECLARE $at AS Timestamp;
					UPDATE orders SET updated_at = $at WHERE id IN $ids;`),
					query.WithParameters(ydbsdk.ParamsBuilder().
						Param("$ids").Any(textList(ids)).
						Param("$at").Timestamp(now().Add(-d)).
						Build()))
			},
			Outbox: func(ctx context.Context) ([]storetest.Queued, error) {
				return readOutbox(ctx, db, s)
			},
			Notified: func() int { return int(notified.Load()) },
		}
	})
}

func readOutbox(ctx context.Context, db *ydbsdk.Driver, s *Store) ([]storetest.Queued, error) {
	rs, err := db.Query().QueryResultSet(ctx, s.t.yql(`SELECT topic, msg_key, payload FROM outbox;`))
	if err != nil {
		return nil, err
	}
	defer func() { _ = rs.Close(ctx) }()
	var out []storetest.Queued
	for row, err := range rs.Rows(ctx) {
		if err != nil {
			return nil, err
		}
		var q storetest.Queued
		if err := row.Scan(&q.Topic, &q.Key, &q.Payload); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// fakeProducer records what it is asked to publish, or fails.
type fakeProducer struct {
	mu      sync.Mutex
	fail    error
	records []*kgo.Record
}

func (p *fakeProducer) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(kgo.ProduceResults, len(rs))
	for i, r := range rs {
		out[i] = kgo.ProduceResult{Record: r, Err: p.fail}
		if p.fail == nil {
			p.records = append(p.records, r)
		}
	}
	return out
}

func (p *fakeProducer) setFail(err error) {
	p.mu.Lock()
	p.fail = err
	p.mu.Unlock()
}

func (p *fakeProducer) eventIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, r := range p.records {
		ids = append(ids, outbox.EventID(r))
	}
	return ids
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// completeOrders queues n purchase events through the store and returns
// their event ids, sorted.
func completeOrders(t *testing.T, ctx context.Context, s *Store, n int) []string {
	t.Helper()
	var ids []string
	user := uuid.NewString()
	for i := range n {
		o := storetest.NewOrder(user, "k"+string(rune('a'+i)))
		if _, _, err := s.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		ev := events.PurchaseCompleted{EventID: o.ID, OrderID: o.ID, UserID: user, Item: o.Item, Price: o.Price, CreatedAt: time.Now().UTC()}
		if _, err := s.CompleteOrder(ctx, o.ID, ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestRelayPublishesAtLeastOnce(t *testing.T) {
	db := openTestDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := newTestStore(t, db, nil)
	cfg := Config{Prefix: s.Dir()}
	producer := &fakeProducer{}
	relay, err := NewRelay(db, cfg, producer, quiet(), nil, RelayConfig{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	ids := completeOrders(t, ctx, s, 3)

	// Kafka is down: nothing is deleted, and the lease is handed back.
	producer.setFail(errors.New("broker down"))
	if n, err := relay.PublishBatch(ctx); err == nil || n != 0 {
		t.Fatalf("publish with kafka down = %d, %v", n, err)
	}
	if q, err := readOutbox(ctx, db, s); err != nil || len(q) != 3 {
		t.Fatalf("outbox after failure = %d, %v", len(q), err)
	}
	producer.setFail(nil)

	// Two batches of at most two, then nothing.
	total := 0
	for range 3 {
		n, err := relay.PublishBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	got := producer.eventIDs()
	slices.Sort(got)
	if total != 3 || !slices.Equal(got, ids) {
		t.Fatalf("published %d: %v, want %v", total, got, ids)
	}
	for _, r := range producer.records {
		if r.Topic != events.TopicPurchases || len(r.Key) == 0 || !strings.Contains(string(r.Value), outbox.EventID(r)) {
			t.Fatalf("record = %s %s %s", r.Topic, r.Key, r.Value)
		}
	}
	if q, err := readOutbox(ctx, db, s); err != nil || len(q) != 0 {
		t.Fatalf("outbox after publishing = %d, %v", len(q), err)
	}
}

func TestRelayLeaseKeepsOtherReplicasOff(t *testing.T) {
	db := openTestDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := newTestStore(t, db, nil)
	cfg := Config{Prefix: s.Dir()}
	ids := completeOrders(t, ctx, s, 2)

	a, err := NewRelay(db, cfg, &fakeProducer{}, quiet(), nil, RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	producerB := &fakeProducer{}
	b, err := NewRelay(db, cfg, producerB, quiet(), nil, RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Replica A claims the events and (say) dies before publishing them.
	claimed, err := a.claim(ctx, ids)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim = %v, %v", claimed, err)
	}
	if again, err := a.claim(ctx, ids); err != nil || len(again) != 0 {
		t.Fatalf("second claim = %v, %v", again, err)
	}
	if n, err := b.PublishBatch(ctx); err != nil || n != 0 {
		t.Fatalf("replica B published %d leased events, %v", n, err)
	}
	// When the lease runs out, B publishes them.
	b.now = func() time.Time { return now().Add(2 * time.Minute) }
	if n, err := b.PublishBatch(ctx); err != nil || n != 2 {
		t.Fatalf("replica B after the lease = %d, %v", n, err)
	}
	got := producerB.eventIDs()
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Fatalf("published %v, want %v", got, ids)
	}
}

// The rest needs no server.

func TestDSN(t *testing.T) {
	for _, c := range []struct{ endpoint, database, want string }{
		{"grpc://localhost:2136", "/local", "grpc://localhost:2136/local"},
		{"grpc://localhost:2136/", "local", "grpc://localhost:2136/local"},
		{"localhost:2136", "/local", "grpc://localhost:2136/local"},
		{"grpcs://ydb.example:2135", "/ru-central1/b1g/etn", "grpcs://ydb.example:2135/ru-central1/b1g/etn"},
	} {
		if got := DSN(c.endpoint, c.database); got != c.want {
			t.Errorf("DSN(%q, %q) = %q, want %q", c.endpoint, c.database, got, c.want)
		}
	}
}

func TestTablePrefix(t *testing.T) {
	for _, c := range []struct{ root, prefix, dir, pragma string }{
		{"/local", "", "/local", ""},
		{"/local", "merch", "/local/merch", `PRAGMA TablePathPrefix("/local/merch");` + "\n"},
		{"/local", "/local/merch/", "/local/merch", `PRAGMA TablePathPrefix("/local/merch");` + "\n"},
		{"local", "a/b", "/local/a/b", `PRAGMA TablePathPrefix("/local/a/b");` + "\n"},
	} {
		got, err := tablesFor(c.root, c.prefix)
		if err != nil || got.dir != c.dir || got.pragma != c.pragma {
			t.Errorf("tablesFor(%q, %q) = %+v, %v", c.root, c.prefix, got, err)
		}
	}
	for _, bad := range []string{`a"b`, "a b", "a\\b", "a`b", "x\n"} {
		if _, err := tablesFor("/local", bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
	if got := (tables{pragma: "P;\n"}).yql("SELECT 1;"); got != "P;\nSELECT 1;" {
		t.Errorf("yql = %q", got)
	}
}
