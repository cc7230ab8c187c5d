package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/events"
	pkgkafka "github.com/merchshop/merchshop/pkg/kafka"
	"github.com/merchshop/merchshop/pkg/kafka/kafkatest"
	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/pkg/testenv"
	"github.com/merchshop/merchshop/services/user/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/user/internal/app"
	"github.com/merchshop/merchshop/services/user/internal/testdb"
	"github.com/merchshop/merchshop/services/user/internal/transport/kafka"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type fixture struct {
	svc    *app.Service
	store  *postgres.Store
	userID string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	store := postgres.New(testdb.Pool(t))
	userID := uuid.NewString()
	if _, err := store.CreateUser(context.Background(), app.User{ID: userID, Username: "buyer", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	return fixture{svc: app.New(store, nil, nil, nil, quietLog()), store: store, userID: userID}
}

func purchase(t *testing.T, orderID, userID, item string) []byte {
	t.Helper()
	b, err := json.Marshal(events.PurchaseCompleted{
		EventID: uuid.NewString(), OrderID: orderID, UserID: userID, Item: item, Price: 20, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f fixture) inventory(t *testing.T) map[string]int64 {
	t.Helper()
	items, err := f.store.Inventory(context.Background(), f.userID)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, it := range items {
		m[it.Item] = it.Quantity
	}
	return m
}

func TestSamePurchaseTwiceAppliesOnce(t *testing.T) {
	f := newFixture(t)
	h := kafka.PurchaseHandler(f.svc, quietLog())
	order := uuid.NewString()
	rec := &kgo.Record{Topic: events.TopicPurchases, Value: purchase(t, order, f.userID, "cup")}

	// Twice in one batch and once more in a later batch (a redelivery).
	if err := h(context.Background(), []*kgo.Record{rec, rec}); err != nil {
		t.Fatal(err)
	}
	if err := h(context.Background(), []*kgo.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if inv := f.inventory(t); len(inv) != 1 || inv["cup"] != 1 {
		t.Fatalf("inventory %v, want one cup", inv)
	}
	// The RPC path with the same order id is a replay too.
	granted, err := f.svc.GrantItem(context.Background(), app.Grant{OrderID: order, UserID: f.userID, Item: "cup"})
	if err != nil || granted {
		t.Fatalf("GrantItem replay: granted %v err %v", granted, err)
	}
}

func TestMalformedPurchasesAreSkipped(t *testing.T) {
	f := newFixture(t)
	h := kafka.PurchaseHandler(f.svc, quietLog())
	good := purchase(t, uuid.NewString(), f.userID, "pen")
	batch := []*kgo.Record{
		{Value: []byte("not json")},
		{Value: []byte(`{"order_id":"x","user_id":"y","item":"cup"}`)},
		{Value: purchase(t, uuid.NewString(), f.userID, "")},
		{Value: purchase(t, uuid.NewString(), uuid.NewString(), "cup")}, // unknown user
		{Value: good},
	}
	if err := h(context.Background(), batch); err != nil {
		t.Fatalf("a malformed event failed the batch: %v", err)
	}
	if inv := f.inventory(t); len(inv) != 1 || inv["pen"] != 1 {
		t.Fatalf("inventory %v, want one pen", inv)
	}
}

type failingGranter struct{}

func (failingGranter) GrantItem(context.Context, app.Grant) (bool, error) {
	return false, errors.New("database down")
}

func (failingGranter) GrantedBefore(_ context.Context, gs []app.Grant) ([]bool, error) {
	return make([]bool, len(gs)), nil
}

func TestLookupFailureFailsTheBatch(t *testing.T) {
	h := kafka.PurchaseHandler(lookupFailing{}, quietLog())
	rec := &kgo.Record{Value: []byte(`{"order_id":"6f9619ff-8b86-d011-b42d-00c04fc964ff","user_id":"7f9619ff-8b86-d011-b42d-00c04fc964ff","item":"cup"}`)}
	if err := h(context.Background(), []*kgo.Record{rec}); err == nil {
		t.Fatal("a failed look-up was swallowed; the batch would be committed and the grant lost")
	}
}

type lookupFailing struct{ failingGranter }

func (lookupFailing) GrantedBefore(context.Context, []app.Grant) ([]bool, error) {
	return nil, errors.New("database down")
}

// countingGranter counts the grant transactions the handler asks for.
type countingGranter struct {
	*app.Service
	grants int
}

func (c *countingGranter) GrantItem(ctx context.Context, g app.Grant) (bool, error) {
	c.grants++
	return c.Service.GrantItem(ctx, g)
}

// TestGrantedOrdersSkipTheTransaction: the saga granted first (the usual
// case), so the event needs no grant transaction; a new order and a
// conflicting one still go through GrantItem, which decides them.
func TestGrantedOrdersSkipTheTransaction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	done, fresh, clash := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, g := range []app.Grant{{OrderID: done, UserID: f.userID, Item: "cup"}, {OrderID: clash, UserID: f.userID, Item: "pen"}} {
		if _, err := f.svc.GrantItem(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	c := &countingGranter{Service: f.svc}
	h := kafka.PurchaseHandler(c, quietLog())
	batch := []*kgo.Record{
		{Value: purchase(t, strings.ToUpper(done), f.userID, "cup")}, // the same order, ids in another case
		{Value: purchase(t, fresh, f.userID, "book")},
		{Value: purchase(t, clash, f.userID, "hoody")}, // the order was for a pen: refused, skipped
	}
	if err := h(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if c.grants != 2 {
		t.Errorf("%d grant transactions, want 2 (the new order and the conflicting one)", c.grants)
	}
	if inv := f.inventory(t); len(inv) != 3 || inv["cup"] != 1 || inv["book"] != 1 || inv["pen"] != 1 {
		t.Fatalf("inventory %v, want one cup, one book, one pen", inv)
	}
}

func TestTransientFailureFailsTheBatch(t *testing.T) {
	h := kafka.PurchaseHandler(failingGranter{}, quietLog())
	rec := &kgo.Record{Value: []byte(`{"order_id":"6f9619ff-8b86-d011-b42d-00c04fc964ff","user_id":"7f9619ff-8b86-d011-b42d-00c04fc964ff","item":"cup"}`)}
	if err := h(context.Background(), []*kgo.Record{rec}); err == nil {
		t.Fatal("a transient failure was swallowed; the batch would be committed and the grant lost")
	}
}

// TestConsumerThroughKafka publishes one purchase twice to a topic of its
// own on the real broker and runs the real consumer: the item is granted
// once.
func TestConsumerThroughKafka(t *testing.T) {
	brokers := []string{testenv.Need(t, "KAFKA_BROKERS")}
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	topic := "test.user.purchases." + uuid.NewString()[:8]
	if err := pkgkafka.EnsureTopics(ctx, brokers, 2, topic); err != nil {
		t.Fatal(err)
	}
	producer, err := pkgkafka.NewProducer(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	order := uuid.NewString()
	payload := purchase(t, order, f.userID, "socks")
	rec := func() *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(order), Value: payload,
			Headers: []kgo.RecordHeader{{Key: outbox.HeaderEventID, Value: []byte(order)}}}
	}
	if err := producer.ProduceSync(ctx, rec(), rec()).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := 0
	handler := kafka.PurchaseHandler(f.svc, quietLog())
	consumer, err := pkgkafka.NewConsumer(pkgkafka.ConsumerConfig{
		Brokers: brokers, Group: "test-" + topic, Topics: []string{topic},
	}, quietLog(), func(ctx context.Context, records []*kgo.Record) error {
		if err := handler(ctx, records); err != nil {
			return err
		}
		mu.Lock()
		seen += len(records)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.Run(t, ctx, 15*time.Second, consumer.Run)

	for {
		mu.Lock()
		n := seen
		mu.Unlock()
		if n >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumer handled %d of 2 records before the deadline", n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if inv := f.inventory(t); len(inv) != 1 || inv["socks"] != 1 {
		t.Fatalf("inventory %v, want one pair of socks", inv)
	}
}
