-- +goose Up
CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per item type a user owns.
CREATE TABLE inventory (
    user_id  UUID NOT NULL REFERENCES users (id),
    item     TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (user_id, item)
);

-- Every applied grant, keyed by the order id: a replayed GrantItem (an RPC
-- retry or a redelivered purchase event) finds its order here and adds
-- nothing.
CREATE TABLE grants (
    order_id   UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id),
    item       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE grants;
DROP TABLE inventory;
DROP TABLE users;
