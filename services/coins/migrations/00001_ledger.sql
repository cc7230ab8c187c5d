-- +goose Up
-- Amounts are stored in minor units: 1 coin = 100. The API speaks whole coins.

-- One account per user. The balance is a cache of the sum of the account's
-- ledger entries, kept in the same transaction as every entry.
CREATE TABLE accounts (
    user_id    UUID        PRIMARY KEY,
    username   TEXT        NOT NULL,
    balance    BIGINT      NOT NULL CHECK (balance >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT accounts_username_uq UNIQUE (username)
);

-- One row per money movement. The idempotency key is unique, so a replayed
-- request finds the first outcome; request_hash tells a replay from a key
-- reused for a different request.
CREATE TABLE transactions (
    id              UUID        PRIMARY KEY,
    idempotency_key TEXT        NOT NULL,
    kind            TEXT        NOT NULL CHECK (kind IN ('grant', 'transfer', 'purchase', 'credit')),
    from_user_id    UUID        NULL REFERENCES accounts (user_id),
    to_user_id      UUID        NULL REFERENCES accounts (user_id),
    amount          BIGINT      NOT NULL CHECK (amount > 0),
    reason          TEXT        NOT NULL DEFAULT '',
    request_hash    TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT transactions_idempotency_key_uq UNIQUE (idempotency_key),
    CONSTRAINT transactions_parties CHECK (
        (kind = 'transfer' AND from_user_id IS NOT NULL AND to_user_id IS NOT NULL AND from_user_id <> to_user_id)
        OR (kind = 'purchase' AND from_user_id IS NOT NULL AND to_user_id IS NULL)
        OR (kind IN ('grant', 'credit') AND from_user_id IS NULL AND to_user_id IS NOT NULL)
    )
);

-- Grouped transfer history: both directions are answered from these
-- indexes alone (index-only scans).
CREATE INDEX transactions_sent_idx ON transactions (from_user_id, to_user_id) INCLUDE (amount)
    WHERE kind = 'transfer';
CREATE INDEX transactions_received_idx ON transactions (to_user_id, from_user_id) INCLUDE (amount)
    WHERE kind = 'transfer';

-- The ledger: one signed entry per account a transaction touches; the
-- entries of a transaction sum to zero for transfers.
CREATE TABLE ledger_entries (
    id             BIGSERIAL   PRIMARY KEY,
    transaction_id UUID        NOT NULL REFERENCES transactions (id),
    user_id        UUID        NOT NULL REFERENCES accounts (user_id),
    delta          BIGINT      NOT NULL CHECK (delta <> 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Itemised history of an account, in either order.
CREATE INDEX ledger_entries_user_idx ON ledger_entries (user_id, id);
CREATE INDEX ledger_entries_transaction_idx ON ledger_entries (transaction_id);

-- The ledger is append-only: rows of transactions and ledger_entries are
-- never updated or deleted (a correction is a new transaction).
-- +goose StatementBegin
CREATE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % rejected: the ledger is append-only', TG_OP, TG_TABLE_NAME;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- +goose Down
DROP TABLE IF EXISTS ledger_entries;
DROP TABLE IF EXISTS transactions;
DROP TABLE IF EXISTS accounts;
DROP FUNCTION IF EXISTS ledger_reject_change();
