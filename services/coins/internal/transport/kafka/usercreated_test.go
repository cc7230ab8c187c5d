package kafka_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/kafka"
	"github.com/merchshop/merchshop/pkg/kafka/kafkatest"
	"github.com/merchshop/merchshop/pkg/testenv"

	pgstore "github.com/merchshop/merchshop/services/coins/internal/adapters/postgres"
	"github.com/merchshop/merchshop/services/coins/internal/app"
	"github.com/merchshop/merchshop/services/coins/internal/testdb"
	coinskafka "github.com/merchshop/merchshop/services/coins/internal/transport/kafka"
)

func userCreated(t *testing.T, id, name string) []byte {
	t.Helper()
	b, err := json.Marshal(events.UserCreated{EventID: uuid.NewString(), UserID: id, Username: name, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func count(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHandlerOpensOnceAndSkipsMalformed(t *testing.T) {
	pool := testdb.Pool(t, 4)
	svc := app.New(pgstore.New(pool, 0), nil)
	h := coinskafka.UserCreatedHandler(svc, slog.New(slog.DiscardHandler))
	id := uuid.NewString()
	ev := userCreated(t, id, "alice")
	batch := []*kgo.Record{
		{Value: ev},
		{Value: []byte("{not json")},
		{Value: userCreated(t, "not-a-uuid", "x")},
		{Value: userCreated(t, uuid.NewString(), "has space")},
		{Value: ev},
	}
	ctx := context.Background()
	for range 2 {
		if err := h(ctx, batch); err != nil {
			t.Fatalf("handler: %v", err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM accounts`); n != 1 {
		t.Errorf("accounts = %d, want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM transactions WHERE kind = 'grant' AND to_user_id = $1`, id); n != 1 {
		t.Errorf("grants = %d, want 1", n)
	}
	if b, err := svc.Balance(ctx, id); err != nil || b != 1000 {
		t.Errorf("balance %d %v", b, err)
	}
}

// TestConsumerOverKafka publishes one user.created event twice (and a
// malformed one) to a topic of its own and runs the real consumer until it
// has committed all three.
func TestConsumerOverKafka(t *testing.T) {
	brokers := strings.Split(testenv.Need(t, "KAFKA_BROKERS"), ",")
	pool := testdb.Pool(t, 4)
	svc := app.New(pgstore.New(pool, 0), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	suffix := uuid.NewString()[:8]
	topic, group := "test.coins.user-created."+suffix, "test-coins-user-created-"+suffix
	if err := kafka.EnsureTopics(ctx, brokers, 2, topic); err != nil {
		t.Fatal(err)
	}
	producer, err := kafka.NewProducer(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	adm := kadm.NewClient(producer.Client())
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		_, _ = adm.DeleteGroup(dctx, group)
		_, _ = adm.DeleteTopics(dctx, topic)
	})

	id := uuid.NewString()
	ev := userCreated(t, id, "carol")
	recs := []*kgo.Record{
		{Topic: topic, Key: []byte(id), Value: ev},
		{Topic: topic, Key: []byte("junk"), Value: []byte("junk")},
		{Topic: topic, Key: []byte(id), Value: ev},
	}
	if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	consumer, err := coinskafka.NewUserCreatedConsumer(brokers, group, topic, svc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.Run(t, ctx, 15*time.Second, consumer.Run)

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := adm.FetchOffsets(ctx, group)
		var committed int64
		if err == nil {
			resp.Each(func(o kadm.OffsetResponse) {
				if o.Topic == topic && o.Err == nil {
					committed += o.At
				}
			})
		}
		if committed == int64(len(recs)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer committed %d of %d records (last error %v)", committed, len(recs), err)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll on a condition
	}
	if n := count(t, pool, `SELECT count(*) FROM transactions WHERE kind = 'grant' AND to_user_id = $1`, id); n != 1 {
		t.Errorf("grants = %d, want 1", n)
	}
	if b, err := svc.Balance(ctx, id); err != nil || b != 1000 {
		t.Errorf("balance %d %v", b, err)
	}
}
