// Package kafka wraps franz-go: producers with acks from all replicas and
// idempotence, and consumer groups that commit only what was handled
// (at-least-once delivery; handlers must tolerate redelivery).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer produces with acks from all in-sync replicas and idempotence
// (franz-go's defaults, made explicit). It is safe for concurrent use.
type Producer struct {
	opts []kgo.Opt
	mu   sync.RWMutex
	c    *kgo.Client
}

// NewProducer returns a Producer on brokers.
func NewProducer(brokers []string, opts ...kgo.Opt) (*Producer, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.ProduceRequestTimeout(10 * time.Second),
		kgo.RecordDeliveryTimeout(30 * time.Second),
		kgo.MaxBufferedRecords(10_000),
	}
	opts = append(base, opts...)
	c, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return &Producer{opts: opts, c: c}, nil
}

// ProduceSync produces rs and waits for the acknowledgements. When a
// record failed with UNKNOWN_TOPIC_ID (its topic was deleted and created
// again: franz-go keeps the old topic id for good), the client is replaced
// so that the caller's retry reaches the new topic.
func (p *Producer) ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	p.mu.RLock()
	c := p.c
	p.mu.RUnlock()
	res := c.ProduceSync(ctx, rs...)
	stale := false
	for _, r := range res {
		if errors.Is(r.Err, kerr.UnknownTopicID) {
			stale = true
			break
		}
	}
	if !stale {
		return res
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c == c {
		if nc, err := kgo.NewClient(p.opts...); err == nil {
			p.c = nc
			// Other callers may still be waiting on the old client: their
			// records fail and their callers retry, on the new one.
			go c.Close()
		}
	}
	return res
}

// Client is the current client (for admin requests, say kadm.NewClient).
func (p *Producer) Client() *kgo.Client {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.c
}

// Close flushes and closes the client.
func (p *Producer) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.Close()
}

// BatchHandler applies one polled batch. Returning an error makes the
// consumer retry the same batch (with backoff) without committing it.
type BatchHandler func(ctx context.Context, records []*kgo.Record) error

// Consumer is a consumer-group member that hands batches to a handler and
// commits offsets after the handler succeeded.
type Consumer struct {
	client  *kgo.Client
	opts    []kgo.Opt
	handler BatchHandler
	log     *slog.Logger
	maxPoll int
}

// ConsumerConfig names the group and topics.
type ConsumerConfig struct {
	Brokers []string
	Group   string
	Topics  []string
	// MaxPoll bounds a batch; 0 means 500.
	MaxPoll int
	// MinBytes lets the broker hold a fetch until this many bytes are
	// there, for at most the fetch wait (500 ms), so that a steady trickle
	// of events arrives in batches (one insert or one query per batch
	// rather than per event). 0: answer as soon as any record is there.
	MinBytes int32
}

// fetchMaxWait is how long the broker may hold a fetch that has less than
// the minimum bytes.
const fetchMaxWait = 500 * time.Millisecond

// NewConsumer joins cfg.Group. New groups start from the earliest offset so
// that no event published before the first start is skipped.
func NewConsumer(cfg ConsumerConfig, log *slog.Logger, h BatchHandler) (*Consumer, error) {
	if cfg.MaxPoll <= 0 {
		cfg.MaxPoll = 500
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(fetchMaxWait),
		// A member killed without leaving holds its partitions until the
		// session times out (45 s by default); 10 s bounds that stall.
		kgo.SessionTimeout(10 * time.Second),
	}
	if cfg.MinBytes > 0 {
		opts = append(opts, kgo.FetchMinBytes(cfg.MinBytes))
	}
	c, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer %s: %w", cfg.Group, err)
	}
	return &Consumer{client: c, opts: opts, handler: h, log: log.With("group", cfg.Group), maxPoll: cfg.MaxPoll}, nil
}

// Run consumes until ctx ends.
func (c *Consumer) Run(ctx context.Context) error {
	// With BlockRebalanceOnPoll, leaving the group waits for AllowRebalance;
	// without it Close would hang on shutdown.
	defer func() {
		c.client.AllowRebalance()
		c.client.Close()
	}()
	var (
		errWait       time.Duration
		unknownRounds int
	)
	for {
		fetches := c.client.PollRecords(ctx, c.maxPoll)
		if ctx.Err() != nil {
			return nil
		}
		records := fetches.Records()
		if errs := fetches.Errors(); len(errs) > 0 {
			for _, fe := range errs {
				if errors.Is(fe.Err, context.Canceled) {
					return nil
				}
			}
			if len(records) == 0 {
				// Nothing but errors (a broker away, a topic deleted and
				// recreated under us: UNKNOWN_TOPIC_ID): polling again at
				// once returns the same errors at once, a busy loop that
				// logged millions of lines. Back off, log one line per
				// round, and refresh the metadata so that a recreated topic
				// is found again.
				errWait = min(max(2*errWait, minErrWait), maxErrWait)
				c.log.Warn("fetch failed; backing off", "errors", len(errs), "topic", errs[0].Topic,
					"partition", errs[0].Partition, "error", errs[0].Err, "retry_in", errWait)
				c.client.ForceMetadataRefresh()
				c.client.AllowRebalance()
				if !wait(ctx, errWait) {
					return nil
				}
				if unknownTopicID(errs) {
					unknownRounds++
				} else {
					unknownRounds = 0
				}
				if unknownRounds >= rejoinAfter {
					// The topic was deleted and created again: franz-go
					// keeps the old topic id for good, whatever the
					// metadata says. Leave the group and join again with a
					// new client (the group's offsets went with the old
					// topic, so it starts at the new one's beginning).
					if err := c.rejoin(); err != nil {
						c.log.Error("rejoining after the topic was recreated failed", "error", err)
					}
					unknownRounds = 0
				}
				continue
			}
			c.log.Warn("fetch failed for some partitions", "errors", len(errs), "topic", errs[0].Topic,
				"partition", errs[0].Partition, "error", errs[0].Err)
		}
		errWait, unknownRounds = 0, 0
		if len(records) > 0 {
			if err := c.handleWithRetry(ctx, records); err != nil {
				return nil // ctx ended while retrying; nothing was committed.
			}
			if err := c.client.CommitRecords(ctx, records...); err != nil && ctx.Err() == nil {
				// Not fatal: the batch is redelivered after a rebalance and
				// the handler is idempotent.
				c.log.Warn("commit failed", "error", err)
			}
		}
		c.client.AllowRebalance()
	}
}

// The pacing of polls that return only errors, and how many rounds of
// nothing but UNKNOWN_TOPIC_ID make the consumer rejoin with a new client.
const (
	minErrWait  = 100 * time.Millisecond
	maxErrWait  = 5 * time.Second
	rejoinAfter = 5
)

func unknownTopicID(errs []kgo.FetchError) bool {
	for _, fe := range errs {
		if !errors.Is(fe.Err, kerr.UnknownTopicID) {
			return false
		}
	}
	return true
}

// rejoin replaces the client with a new one of the same options.
func (c *Consumer) rejoin() error {
	c.client.AllowRebalance()
	c.client.Close()
	nc, err := kgo.NewClient(c.opts...)
	if err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	c.client = nc
	c.log.Warn("rejoined the group with a new client (topic recreated)")
	return nil
}

// wait waits d; false when ctx ended first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *Consumer) handleWithRetry(ctx context.Context, records []*kgo.Record) error {
	backoff := 100 * time.Millisecond
	for {
		err := c.handler(ctx, records)
		if err == nil {
			return nil
		}
		c.log.Error("handler failed; retrying batch", "records", len(records), "error", err, "backoff", backoff)
		if !wait(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// EnsureTopics creates the topics that do not exist yet, with the given
// partition count and replication factor 1 (tests and local runs; the Helm
// chart creates production topics).
func EnsureTopics(ctx context.Context, brokers []string, partitions int32, topics ...string) error {
	c, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer c.Close()
	adm := kadm.NewClient(c)
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
