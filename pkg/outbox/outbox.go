// Package outbox is the transactional outbox: events are inserted in the
// same PostgreSQL transaction as the change they describe, and a relay
// publishes them to Kafka at least once, deleting each only after Kafka
// acknowledged it. Consumers deduplicate on the event id (HeaderEventID)
// where they store the event.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/merchshop/merchshop/pkg/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates the outbox table in the database of a service that
// publishes events (versions kept apart from the service's own migrations).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.Migrate(ctx, pool, migrations, "migrations", "outbox_schema_version")
}

// Header names set on every published record.
const (
	HeaderEventID = "event_id"
)

// Event is one message to publish.
type Event struct {
	// ID deduplicates the event downstream; it must be a UUID.
	ID      string
	Topic   string
	Key     string
	Payload any
}

// NewID returns a fresh event id.
func NewID() string { return uuid.NewString() }

// Add inserts events within tx. They become visible to the relay only if tx
// commits.
func Add(ctx context.Context, tx pgx.Tx, events ...Event) error {
	for _, e := range events {
		args, err := Args(e)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO outbox (`+InsertColumns+`) VALUES ($1, $2, $3, $4)
			 ON CONFLICT (event_id) DO NOTHING`, args...); err != nil {
			return fmt.Errorf("outbox insert %s: %w", e.Topic, err)
		}
	}
	return nil
}

// InsertColumns are the outbox columns, in the order of Args, for a
// statement that inserts an event itself (say in a data-modifying CTE, one
// statement with the change the event records, so atomic without an
// explicit transaction): INSERT INTO outbox (InsertColumns) ... ON CONFLICT
// (event_id) DO NOTHING.
const InsertColumns = "event_id, topic, key, payload"

// Args returns e's values for InsertColumns.
func Args(e Event) ([]any, error) {
	payload, err := json.Marshal(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("outbox encode %s: %w", e.Topic, err)
	}
	return []any{e.ID, e.Topic, e.Key, payload}, nil
}

// Producer is the part of a Kafka client the relay needs.
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Relay publishes outbox rows to Kafka.
type Relay struct {
	pool     *pgxpool.Pool
	producer Producer
	log      *slog.Logger
	batch    int
	interval time.Duration
	linger   time.Duration
	wake     chan struct{}

	published prometheus.Counter
	lag       prometheus.Gauge
	pending   prometheus.Gauge
}

// RelayConfig tunes the relay.
type RelayConfig struct {
	// Batch bounds the rows published per round; 0 means 500.
	Batch int
	// Interval is how often the table is polled when nobody calls Notify;
	// 0 means 200ms.
	Interval time.Duration
	// Linger is how long a wake-up waits for more commits before it
	// publishes, so that the events of concurrent requests go out in one
	// round (one select, one produce, one delete) instead of one round
	// each; 0 means 25ms, a negative value publishes at once. At 300
	// movements a second, 5 ms gave rounds of 2.5 events: four PostgreSQL
	// round trips, a commit and a Kafka request for every 2.5 events. The
	// consumers (the history read model) do not need the events sooner.
	Linger time.Duration
}

// lagEvery bounds how often the relay measures its lag (a count over the
// table): not after every round.
const lagEvery = time.Second

// NewRelay returns a relay; reg receives its metrics (may be nil).
func NewRelay(pool *pgxpool.Pool, producer Producer, log *slog.Logger, reg prometheus.Registerer, cfg RelayConfig) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.Linger == 0 {
		cfg.Linger = 25 * time.Millisecond
	}
	r := &Relay{
		pool: pool, producer: producer, log: log.With("component", "outbox-relay"),
		batch: cfg.Batch, interval: cfg.Interval, linger: max(cfg.Linger, 0), wake: make(chan struct{}, 1),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_published_total", Help: "Outbox events published to Kafka.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_lag_seconds", Help: "Age of the oldest unpublished outbox event (0 when empty).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_pending_events", Help: "Outbox events not yet published.",
		}),
	}
	if reg != nil {
		reg.MustRegister(r.published, r.lag, r.pending)
	}
	return r
}

// Notify wakes the relay after a commit that added events. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends. Errors are logged and retried on the next
// round: an unpublished event stays in the table, so nothing is lost.
func (r *Relay) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.interval)
	defer ticker.Stop()
	var lastLag time.Time
	for {
		for {
			n, err := r.PublishBatch(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.log.Warn("publish failed; will retry", "error", err)
				break
			}
			if n < r.batch {
				break
			}
		}
		if time.Since(lastLag) >= lagEvery {
			r.observeLag(ctx)
			lastLag = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-r.wake:
			if r.linger > 0 {
				t := time.NewTimer(r.linger)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
			}
		}
	}
}

// PublishBatch publishes up to one batch of the oldest events and deletes
// them, returning how many it published. Rows are locked with SKIP LOCKED,
// so several relays (replicas) share the work without publishing a row
// twice at the same time. A crash between Kafka's acknowledgement and the
// delete republishes the batch: delivery is at least once.
func (r *Relay) PublishBatch(ctx context.Context) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx,
		`SELECT id, event_id::text, topic, key, payload FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, r.batch)
	if err != nil {
		return 0, fmt.Errorf("select outbox: %w", err)
	}
	var ids []int64
	var records []*kgo.Record
	for rows.Next() {
		var (
			id                  int64
			eventID, topic, key string
			payload             []byte
		)
		if err := rows.Scan(&id, &eventID, &topic, &key, &payload); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan outbox: %w", err)
		}
		ids = append(ids, id)
		records = append(records, &kgo.Record{
			Topic: topic, Key: []byte(key), Value: payload,
			Headers: []kgo.RecordHeader{{Key: HeaderEventID, Value: []byte(eventID)}},
		})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(records) == 0 {
		return 0, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.producer.ProduceSync(pctx, records...).FirstErr(); err != nil {
		return 0, fmt.Errorf("produce: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("delete published: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	r.published.Add(float64(len(ids)))
	return len(ids), nil
}

func (r *Relay) observeLag(ctx context.Context) {
	var n int64
	var age float64
	err := r.pool.QueryRow(ctx,
		`SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox`).Scan(&n, &age)
	if err != nil {
		return
	}
	r.pending.Set(float64(n))
	r.lag.Set(age)
}

// EventID returns the event id header of a consumed record ("" if absent).
func EventID(rec *kgo.Record) string {
	for _, h := range rec.Headers {
		if h.Key == HeaderEventID {
			return string(h.Value)
		}
	}
	return ""
}
