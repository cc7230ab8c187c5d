-- +goose Up
-- A refusal is an outcome too. A movement refused for insufficient funds
-- is recorded here under its idempotency key, in the same transaction that
-- read the balance under the payer's row lock, so that a later request with
-- the same key answers the same refusal instead of trying again (the saga
-- in merch fails an order on a refusal; a retry of the charge that then
-- succeeded would take coins for a failed order). request_hash tells a
-- replay from a key reused for a different request, as in transactions.
--
-- Not in transactions: nothing moved, so a refusal has no ledger entries,
-- no event, and must not count in sums over transactions (the history, the
-- reconciliation with the read model). The key space is shared with
-- transactions: a key has at most one outcome, a transaction or a refusal
-- (the movement code checks both under the payer's lock; see
-- internal/adapters/postgres Move).
CREATE TABLE refusals (
    idempotency_key TEXT        NOT NULL,
    kind            TEXT        NOT NULL CHECK (kind IN ('transfer', 'purchase')),
    from_user_id    UUID        NOT NULL REFERENCES accounts (user_id),
    to_user_id      UUID        NULL REFERENCES accounts (user_id),
    amount          BIGINT      NOT NULL CHECK (amount > 0),
    code            TEXT        NOT NULL CHECK (code IN ('insufficient_funds')),
    request_hash    TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT refusals_pk PRIMARY KEY (idempotency_key)
);

-- A recorded outcome is final: refusals are never updated or deleted.
CREATE TRIGGER refusals_append_only BEFORE UPDATE OR DELETE ON refusals
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER refusals_no_truncate BEFORE TRUNCATE ON refusals
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- +goose Down
DROP TABLE IF EXISTS refusals;
