// Package kafka wraps franz-go: producers with acks from all replicas and
// idempotence, and consumer groups that commit only what was handled
// (at-least-once delivery; handlers must tolerate redelivery).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// NewProducer returns a client for producing with acks=all and the
// idempotent producer (franz-go's defaults, made explicit).
func NewProducer(brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.ProduceRequestTimeout(10 * time.Second),
		kgo.RecordDeliveryTimeout(30 * time.Second),
		kgo.MaxBufferedRecords(10_000),
	}
	c, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return c, nil
}

// BatchHandler applies one polled batch. Returning an error makes the
// consumer retry the same batch (with backoff) without committing it.
type BatchHandler func(ctx context.Context, records []*kgo.Record) error

// Consumer is a consumer-group member that hands batches to a handler and
// commits offsets after the handler succeeded.
type Consumer struct {
	client  *kgo.Client
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
	return &Consumer{client: c, handler: h, log: log.With("group", cfg.Group), maxPoll: cfg.MaxPoll}, nil
}

// Run consumes until ctx ends.
func (c *Consumer) Run(ctx context.Context) error {
	// With BlockRebalanceOnPoll, leaving the group waits for AllowRebalance;
	// without it Close would hang on shutdown.
	defer func() {
		c.client.AllowRebalance()
		c.client.Close()
	}()
	for {
		fetches := c.client.PollRecords(ctx, c.maxPoll)
		if ctx.Err() != nil {
			return nil
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			for _, fe := range errs {
				if errors.Is(fe.Err, context.Canceled) {
					return nil
				}
				c.log.Warn("fetch error", "topic", fe.Topic, "partition", fe.Partition, "error", fe.Err)
			}
		}
		records := fetches.Records()
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

func (c *Consumer) handleWithRetry(ctx context.Context, records []*kgo.Record) error {
	backoff := 100 * time.Millisecond
	for {
		err := c.handler(ctx, records)
		if err == nil {
			return nil
		}
		c.log.Error("handler failed; retrying batch", "records", len(records), "error", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
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
