-- +goose Up
-- The catalog: immutable at run time, cached in memory by the service.
CREATE TABLE items (
    name  TEXT   PRIMARY KEY,
    price BIGINT NOT NULL CHECK (price > 0) -- whole coins
);

-- One row per purchase saga. A (user, idempotency key) pair names one order,
-- so a retried request drives the same order instead of paying twice.
CREATE TABLE orders (
    id              UUID        PRIMARY KEY,
    user_id         UUID        NOT NULL,
    item            TEXT        NOT NULL REFERENCES items (name),
    price           BIGINT      NOT NULL CHECK (price > 0),
    idempotency_key TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    failure         TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);

-- The recovery loop scans pending orders by their last attempt; a partial
-- index keeps that scan proportional to the (few) pending orders.
CREATE INDEX orders_pending_idx ON orders (updated_at) WHERE status = 'pending';

-- +goose Down
DROP TABLE orders;
DROP TABLE items;
