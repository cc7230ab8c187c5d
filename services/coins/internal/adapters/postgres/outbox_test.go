package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/kafka"
	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/pkg/testenv"

	pgstore "github.com/merchshop/merchshop/services/coins/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/coins/internal/app"
)

// TestRelayDeliversAfterRestart commits transfers while no relay runs (as
// if the relay had died right after the commit), lets a first relay die
// between publishing and deleting, then starts a new relay against the
// real Kafka: every event arrives, the outbox empties, and a later commit
// is published on Notify. The records go to a topic of the test's own
// instead of coins.transactions, so that running services never see them.
func TestRelayDeliversAfterRestart(t *testing.T) {
	brokers := strings.Split(testenv.Need(t, "KAFKA_BROKERS"), ",")
	e := newEnv(t, 8)
	ctx := ctxT(t)
	log := slog.New(slog.DiscardHandler)

	producer, err := kafka.NewProducer(brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	topic := "test-coins-transactions-" + uuid.NewString()
	if err := kafka.EnsureTopics(ctx, brokers, 3, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kadm.NewClient(producer.Client()).DeleteTopics(ctx, topic); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})
	redirected := topicRedirect{Producer: producer, topic: topic}

	// Commit movements with nobody publishing.
	alice, _ := e.open(t, "alice"), e.open(t, "bob")
	res, err := e.svc.Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 5, IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	rows, err := e.pool.Query(ctx, `SELECT event_id::text FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	rows.Close()
	if len(want) != 3 {
		t.Fatalf("outbox rows = %d, want 3 (2 grants, 1 transfer)", len(want))
	}

	// A relay that dies after Kafka took the records but before it deleted
	// them leaves the rows in place (they are published again: at least
	// once; consumers deduplicate on the event id).
	dying := outbox.NewRelay(e.pool, dyingProducer{redirected}, log, nil, outbox.RelayConfig{})
	if _, err := dying.PublishBatch(ctx); err == nil {
		t.Fatal("the dying relay reported success")
	}
	if n := e.count(t, `SELECT count(*) FROM outbox`); n != 3 {
		t.Fatalf("outbox rows after the dying relay = %d, want 3", n)
	}

	// A new relay delivers them, and later ones on Notify.
	relay := outbox.NewRelay(e.pool, redirected, log, nil, outbox.RelayConfig{Interval: time.Hour})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})

	svc := app.New(pgstore.New(e.pool, 0), relay)
	second, err := svc.Transfer(ctx, app.TransferCmd{FromUserID: alice, ToUsername: "bob", Amount: 6, IdempotencyKey: "k2"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "outbox to drain", func() bool {
		return e.count(t, `SELECT count(*) FROM outbox`) == 0
	})

	consumer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	got := map[string]events.Transaction{}
	var keys = map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 4 && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := consumer.PollFetches(pctx)
		cancel()
		fetches.EachRecord(func(r *kgo.Record) {
			var ev events.Transaction
			if json.Unmarshal(r.Value, &ev) != nil || ev.EventID != outbox.EventID(r) {
				return // someone else's event, or not one of ours
			}
			if ev.TransactionID == second.TransactionID || want[ev.EventID] {
				got[ev.EventID] = ev
				keys[ev.TransactionID] = string(r.Key)
			}
		})
	}
	if len(got) != 4 {
		t.Fatalf("got %d of the 4 events from Kafka", len(got))
	}
	for id := range want {
		if _, ok := got[id]; !ok {
			t.Errorf("event %s committed before the restart was not delivered", id)
		}
	}
	var transfer events.Transaction
	for _, ev := range got {
		if ev.TransactionID == res.TransactionID {
			transfer = ev
		}
	}
	if transfer.Kind != events.KindTransfer || transfer.Amount != 5 || transfer.FromUserID != alice || keys[res.TransactionID] != alice {
		t.Errorf("transfer event %+v with key %q", transfer, keys[res.TransactionID])
	}
}

// topicRedirect publishes every record to one topic, whatever the outbox
// row names.
type topicRedirect struct {
	outbox.Producer
	topic string
}

func (r topicRedirect) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	for _, rec := range rs {
		if rec.Topic != events.TopicTransactions {
			return kgo.ProduceResults{{Record: rec, Err: errors.New("unexpected topic " + rec.Topic)}}
		}
		rec.Topic = r.topic
	}
	return r.Producer.ProduceSync(ctx, rs...)
}

// dyingProducer publishes, then fails as a relay killed before it could
// delete the published rows would.
type dyingProducer struct{ outbox.Producer }

func (d dyingProducer) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	res := d.Producer.ProduceSync(ctx, rs...)
	if res.FirstErr() == nil {
		res = append(res, kgo.ProduceResult{Err: errors.New("relay killed before deleting")})
	}
	return res
}

func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // bounded poll on a condition
	}
}
