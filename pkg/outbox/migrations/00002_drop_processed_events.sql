-- +goose Up
-- No consumer deduplicates through this table any more: the one consumer
-- left (info's ClickHouse writer) deduplicates in ClickHouse itself.
DROP TABLE IF EXISTS processed_events;

-- +goose Down
CREATE TABLE IF NOT EXISTS processed_events (
    consumer     TEXT        NOT NULL,
    event_id     UUID        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
