package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/kafka"
	"github.com/merchshop/merchshop/pkg/kafka/kafkatest"
	"github.com/merchshop/merchshop/pkg/testenv"
)

// TestMinBytesStillDeliversATrickle: a consumer that asks the broker for
// batches of at least 1 MiB still gets a single small record, after at most
// the fetch wait, not never.
func TestMinBytesStillDeliversATrickle(t *testing.T) {
	brokers := []string{testenv.Need(t, "KAFKA_BROKERS")}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := "test.pkg.minbytes." + uuid.NewString()[:8]
	if err := kafka.EnsureTopics(ctx, brokers, 1, topic); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := kafka.NewConsumer(kafka.ConsumerConfig{
		Brokers: brokers, Group: "test-" + topic, Topics: []string{topic}, MinBytes: 1 << 20,
	}, log, func(_ context.Context, records []*kgo.Record) error {
		got.Add(int64(len(records)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.Run(t, ctx, 15*time.Second, c.Run)
	p, err := kafka.NewProducer(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(`{"n":1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for got.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("a record smaller than MinBytes was never delivered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
