package consumer_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/kafka"
	"github.com/merchshop/merchshop/pkg/kafka/kafkatest"
	"github.com/merchshop/merchshop/pkg/testenv"
	"github.com/merchshop/merchshop/services/info/internal/adapters/clickhouse"
	"github.com/merchshop/merchshop/services/info/internal/adapters/consumer"
	"github.com/merchshop/merchshop/services/info/internal/app"
)

// TestKafkaToClickHouse runs the real path: events on a Kafka topic, the
// consumer group, the handler, ClickHouse, and a history query. The topic,
// group and table are this run's own.
func TestKafkaToClickHouse(t *testing.T) {
	brokers := strings.Split(testenv.Need(t, "KAFKA_BROKERS"), ",")
	addr := testenv.Need(t, "CLICKHOUSE_ADDR")
	db := testenv.Need(t, "CLICKHOUSE_TEST_DATABASE")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	store, err := clickhouse.Open(ctx, clickhouse.Config{Addr: addr, Database: db, Table: "history_k" + suffix, Wait: 10 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Drop(context.Background()); _ = store.Close() })

	topic := "test.transactions." + suffix
	if err := kafka.EnsureTopics(ctx, brokers, 2, topic); err != nil {
		t.Fatal(err)
	}
	producer, err := kafka.NewProducer(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	alice, bob := uuid.NewString(), uuid.NewString()
	txs := []events.Transaction{
		{TransactionID: uuid.NewString(), Kind: events.KindGrant, ToUserID: alice, Amount: 1000, Reason: "welcome", CreatedAt: time.Now().UTC()},
		{TransactionID: uuid.NewString(), Kind: events.KindTransfer, FromUserID: alice, FromUsername: "alice", ToUserID: bob, ToUsername: "bob", Amount: 25, CreatedAt: time.Now().UTC().Add(time.Millisecond)},
	}
	var records []*kgo.Record
	for _, tx := range append(txs, txs[1]) { // the transfer twice: a redelivery
		b, _ := json.Marshal(tx)
		records = append(records, &kgo.Record{Topic: topic, Key: []byte(alice), Value: b})
	}
	records = append(records, &kgo.Record{Topic: topic, Key: []byte(alice), Value: []byte("garbage")})
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cons, err := kafka.NewConsumer(kafka.ConsumerConfig{Brokers: brokers, Group: "test-info-" + suffix, Topics: []string{topic}},
		log, consumer.NewHandler(store, log).Handle)
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.Run(t, ctx, 20*time.Second, cons.Run)

	svc := app.New(nil, nil, store)
	for {
		page, err := svc.GetHistory(ctx, alice, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) == 2 {
			if page.Entries[0].Kind != app.KindTransferOut || page.Entries[0].Amount != -25 || page.Entries[1].Amount != 1000 {
				t.Fatalf("alice = %+v", page.Entries)
			}
			break
		}
		if len(page.Entries) > 2 {
			t.Fatalf("duplicates: %+v", page.Entries)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("history not projected in time: %+v", page.Entries)
		case <-time.After(50 * time.Millisecond):
		}
	}
	page, err := svc.GetHistory(ctx, bob, "", 10)
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Amount != 25 || page.Entries[0].Counterpart != "alice" {
		t.Fatalf("bob = %+v, %v", page.Entries, err)
	}
}
