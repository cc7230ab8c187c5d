package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
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
	p := consumeAndProduce(t, ctx, kafka.ConsumerConfig{
		Brokers: brokers, Group: "test-" + topic, Topics: []string{topic}, MinBytes: 1 << 20,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), func(_ context.Context, records []*kgo.Record) error {
		got.Add(int64(len(records)))
		return nil
	})
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(`{"n":1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a record smaller than MinBytes to be delivered", func() bool { return got.Load() >= 1 })
}

// consumeAndProduce runs a consumer of cfg until the test ends (it must
// stop when asked) and returns a producer on the same brokers.
func consumeAndProduce(t *testing.T, ctx context.Context, cfg kafka.ConsumerConfig, log *slog.Logger, h kafka.BatchHandler) *kafka.Producer {
	t.Helper()
	c, err := kafka.NewConsumer(cfg, log, h)
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.Run(t, ctx, 15*time.Second, c.Run)
	p, err := kafka.NewProducer(cfg.Brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// countingHandler counts the records logged at WARN or above.
type countingHandler struct {
	slog.Handler
	warns *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}

func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestConsumerSurvivesTopicRecreated: a topic deleted and created again
// under a running consumer (a reset of a development broker, an operator's
// mistake) gives it fetch errors (UNKNOWN_TOPIC_ID) until it learns the
// new topic. It must find the new topic and go on, and must not spin on
// the errors meanwhile (it once logged millions of lines in minutes).
func TestConsumerSurvivesTopicRecreated(t *testing.T) {
	brokers := []string{testenv.Need(t, "KAFKA_BROKERS")}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	topic := "test.pkg.recreate." + uuid.NewString()[:8]
	if err := kafka.EnsureTopics(ctx, brokers, 1, topic); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	has := func(v string) bool { mu.Lock(); defer mu.Unlock(); return seen[v] }
	warns := &atomic.Int64{}
	p := consumeAndProduce(t, ctx, kafka.ConsumerConfig{Brokers: brokers, Group: "test-" + topic, Topics: []string{topic}},
		slog.New(countingHandler{warns: warns}), func(_ context.Context, records []*kgo.Record) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range records {
				seen[string(r.Value)] = true
			}
			return nil
		})
	produce := func(v string) error {
		return p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr()
	}
	for _, v := range []string{"a0", "a1", "a2"} {
		if err := produce(v); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "the records of the first topic", func() bool { return has("a2") })

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	// The deletion completes in the background; creating the name again
	// is refused until it has.
	waitFor(t, 30*time.Second, "the topic to be created again", func() bool {
		resp, err := adm.CreateTopics(ctx, 1, 1, nil, topic)
		if err != nil {
			return false
		}
		r, ok := resp[topic]
		return ok && r.Err == nil
	})
	warnsBefore := warns.Load()
	// The producer learns the new topic too (franz-go v1.22.3 alone keeps
	// the old topic id for good; Producer replaces its client): the relays
	// retry failed rounds, as this does.
	waitFor(t, 30*time.Second, "a record in the new topic", func() bool { return produce("b") == nil })
	waitFor(t, 60*time.Second, "the record of the new topic to be consumed", func() bool { return has("b") })
	// With 100 ms .. 5 s between failing polls, a minute of errors is at
	// most a few dozen lines; a busy loop makes thousands a second.
	if n := warns.Load() - warnsBefore; n > 200 {
		t.Errorf("%d warnings while the topic was being recreated: the consumer spins on fetch errors", n)
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
