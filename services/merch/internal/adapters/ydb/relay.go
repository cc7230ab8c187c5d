package ydb

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	ydbsdk "github.com/ydb-platform/ydb-go-sdk/v3"
	"github.com/ydb-platform/ydb-go-sdk/v3/query"

	"github.com/merchshop/merchshop/pkg/outbox"
)

// RelayConfig tunes the relay.
type RelayConfig struct {
	// Batch bounds the events published per round; 0 means 500.
	Batch int
	// Interval is how often the table is polled when nobody calls Notify;
	// 0 means 200ms.
	Interval time.Duration
	// Lease is how long a claimed batch is left to this relay before another
	// replica may publish it again; 0 means 1 minute. It must exceed
	// ProduceTimeout.
	Lease time.Duration
	// ProduceTimeout bounds one batch's wait for Kafka; 0 means 30s.
	ProduceTimeout time.Duration
}

// Relay publishes the outbox table to Kafka at least once: it claims a
// batch with an optimistic lease (a serializable transaction that sets
// lease_until on rows whose lease has run out), publishes it, waits for the
// acknowledgement and only then deletes the rows. A crash or a failed
// delete leaves the rows to be claimed again when the lease runs out, so an
// event may be published twice but is never lost; consumers deduplicate on
// the event id header. Several replicas share the table: a batch another
// relay holds is skipped until its lease ends. It has the shape of
// pkg/outbox's PostgreSQL relay (Notify, Run, PublishBatch) and the same
// metrics.
type Relay struct {
	db       *ydbsdk.Driver
	t        tables
	producer outbox.Producer
	log      *slog.Logger
	cfg      RelayConfig
	wake     chan struct{}
	now      func() time.Time

	published prometheus.Counter
	lag       prometheus.Gauge
	pending   prometheus.Gauge
}

// NewRelay returns a relay over the outbox table of the store configured by
// cfg; reg receives its metrics (may be nil).
func NewRelay(db *ydbsdk.Driver, cfg Config, producer outbox.Producer, log *slog.Logger, reg prometheus.Registerer, rc RelayConfig) (*Relay, error) {
	t, err := newTables(db, cfg)
	if err != nil {
		return nil, err
	}
	if rc.Batch <= 0 {
		rc.Batch = 500
	}
	if rc.Interval <= 0 {
		rc.Interval = 200 * time.Millisecond
	}
	if rc.ProduceTimeout <= 0 {
		rc.ProduceTimeout = 30 * time.Second
	}
	if rc.Lease <= 0 {
		rc.Lease = time.Minute
	}
	if rc.Lease <= rc.ProduceTimeout {
		return nil, fmt.Errorf("relay lease %s must exceed the produce timeout %s", rc.Lease, rc.ProduceTimeout)
	}
	r := &Relay{
		db: db, t: t, producer: producer, log: log.With("component", "outbox-relay", "store", "ydb"),
		cfg: rc, wake: make(chan struct{}, 1), now: now,
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
	return r, nil
}

// Notify wakes the relay after a commit that queued events. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends. Errors are logged and retried on the next
// round: an unpublished event stays in the table.
func (r *Relay) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.cfg.Interval)
	defer ticker.Stop()
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
			if n < r.cfg.Batch {
				break
			}
		}
		r.observeLag(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-r.wake:
		}
	}
}

type queued struct {
	eventID, topic, key string
	payload             []byte
	createdAt           time.Time
}

// PublishBatch claims, publishes and deletes up to one batch of the oldest
// events whose lease has run out, returning how many it published.
func (r *Relay) PublishBatch(ctx context.Context) (int, error) {
	ids, err := r.candidates(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	batch, err := r.claim(ctx, ids)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	records := make([]*kgo.Record, len(batch))
	claimed := make([]string, len(batch))
	for i, e := range batch {
		claimed[i] = e.eventID
		records[i] = &kgo.Record{
			Topic: e.topic, Key: []byte(e.key), Value: e.payload,
			Headers: []kgo.RecordHeader{{Key: outbox.HeaderEventID, Value: []byte(e.eventID)}},
		}
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.ProduceTimeout)
	err = r.producer.ProduceSync(pctx, records...).FirstErr()
	cancel()
	if err != nil {
		// Hand the batch back at once instead of at the end of the lease.
		if rerr := r.release(context.WithoutCancel(ctx), claimed); rerr != nil {
			r.log.Warn("release claimed events", "error", rerr)
		}
		return 0, fmt.Errorf("produce: %w", err)
	}
	// Kafka has the events. If this delete fails they are published again
	// when the lease runs out: at least once.
	if err := r.exec(context.WithoutCancel(ctx), `
		DECLARE $ids AS List<Utf8>;
		DELETE FROM outbox WHERE event_id IN $ids;`, ydbsdk.ParamsBuilder().Param("$ids").Any(textList(claimed)).Build()); err != nil {
		return 0, fmt.Errorf("delete published: %w", err)
	}
	r.published.Add(float64(len(batch)))
	return len(batch), nil
}

// candidates reads, without locks, the ids of the oldest events free to
// claim.
func (r *Relay) candidates(ctx context.Context) ([]string, error) {
	var ids []string
	err := r.db.Query().Do(ctx, func(ctx context.Context, ses query.Session) error {
		ids = ids[:0]
		rs, err := ses.QueryResultSet(ctx, r.t.yql(`
			DECLARE $now AS Timestamp;
			DECLARE $limit AS Uint64;
			SELECT event_id, created_at FROM outbox
			WHERE lease_until <= $now
			ORDER BY created_at, event_id
			LIMIT $limit;`),
			query.WithParameters(ydbsdk.ParamsBuilder().
				Param("$now").Timestamp(r.now()).
				Param("$limit").Uint64(uint64(r.cfg.Batch)).
				Build()),
			query.WithTxControl(query.SnapshotReadOnlyTxControl()))
		if err != nil {
			return err
		}
		defer func() { _ = rs.Close(ctx) }()
		for row, err := range rs.Rows(ctx) {
			if err != nil {
				return err
			}
			var (
				id string
				at time.Time
			)
			if err := row.Scan(&id, &at); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}, query.WithIdempotent())
	if err != nil {
		return nil, fmt.Errorf("find outbox events: %w", err)
	}
	return ids, nil
}

// claim takes the lease on those of ids that are still free, in one
// serializable transaction that re-reads them by key: of two relays
// claiming one event, the second to commit is aborted and its retry finds
// the lease taken.
func (r *Relay) claim(ctx context.Context, ids []string) ([]queued, error) {
	var batch []queued
	err := r.db.Query().DoTx(ctx, func(ctx context.Context, tx query.TxActor) error {
		batch = batch[:0]
		t := r.now()
		rs, err := tx.QueryResultSet(ctx, r.t.yql(`
			DECLARE $ids AS List<Utf8>;
			DECLARE $now AS Timestamp;
			SELECT event_id, topic, msg_key, payload, created_at FROM outbox
			WHERE event_id IN $ids AND lease_until <= $now;`),
			query.WithParameters(ydbsdk.ParamsBuilder().Param("$ids").Any(textList(ids)).Param("$now").Timestamp(t).Build()))
		if err != nil {
			return err
		}
		for row, err := range rs.Rows(ctx) {
			if err != nil {
				_ = rs.Close(ctx)
				return err
			}
			var e queued
			if err := row.Scan(&e.eventID, &e.topic, &e.key, &e.payload, &e.createdAt); err != nil {
				_ = rs.Close(ctx)
				return err
			}
			batch = append(batch, e)
		}
		if err := rs.Close(ctx); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		got := make([]string, len(batch))
		for i := range batch {
			got[i] = batch[i].eventID
		}
		return tx.Exec(ctx, r.t.yql(`
			DECLARE $ids AS List<Utf8>;
			DECLARE $until AS Timestamp;
			UPDATE outbox SET lease_until = $until WHERE event_id IN $ids;`),
			query.WithParameters(ydbsdk.ParamsBuilder().Param("$ids").Any(textList(got)).Param("$until").Timestamp(t.Add(r.cfg.Lease)).Build()))
	}, query.WithIdempotent(), serializable())
	if err != nil {
		return nil, fmt.Errorf("claim outbox events: %w", err)
	}
	// Oldest first, so that one user's events keep their order.
	slices.SortFunc(batch, func(a, b queued) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return compareStrings(a.eventID, b.eventID)
	})
	return batch, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// release ends this relay's lease on ids.
func (r *Relay) release(ctx context.Context, ids []string) error {
	return r.exec(ctx, `
		DECLARE $ids AS List<Utf8>;
		DECLARE $now AS Timestamp;
		UPDATE outbox SET lease_until = $now WHERE event_id IN $ids;`,
		ydbsdk.ParamsBuilder().Param("$ids").Any(textList(ids)).Param("$now").Timestamp(r.now()).Build())
}

// exec runs one statement in its own transaction, with retries.
func (r *Relay) exec(ctx context.Context, yql string, params ydbsdk.Params) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProduceTimeout)
	defer cancel()
	return r.db.Query().Exec(ctx, r.t.yql(yql), query.WithParameters(params), query.WithIdempotent())
}

func (r *Relay) observeLag(ctx context.Context) {
	row, err := r.db.Query().QueryRow(ctx, r.t.yql(`SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox;`),
		query.WithIdempotent())
	if err != nil {
		return
	}
	var (
		n      uint64
		oldest *time.Time
	)
	if err := row.Scan(&n, &oldest); err != nil {
		return
	}
	r.pending.Set(float64(n))
	if oldest == nil {
		r.lag.Set(0)
		return
	}
	r.lag.Set(max(0, time.Since(*oldest).Seconds()))
}
