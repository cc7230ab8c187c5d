-- +goose Up
-- Per-counterpart running totals of transfers: what GET /api/info lists as
-- the grouped history. Kept by every transfer, in the statement that
-- records it (the trigger below), so reading a user's history is one index range of a row per
-- counterpart, whatever the length of the history. The ledger stays the
-- truth: transfer_totals equals the transfers in transactions summed per
-- (user, direction, counterpart), which the reconcile command and the
-- store's tests check.
--
-- direction 1: received from counterpart; 2: sent to counterpart. The
-- counterpart's username is kept beside its id (usernames never change and
-- accounts are never deleted), so the read needs no join; COLLATE "C" is
-- the order the history is listed in (bytewise, whatever the database
-- locale).
--
-- No foreign keys: the table is derived from transactions, whose own keys
-- already tie both parties to accounts, and four key checks per transfer
-- (measured: 70 of the upsert's 120 us) would only repeat them.
CREATE TABLE transfer_totals (
    user_id           UUID     NOT NULL,
    direction         SMALLINT NOT NULL CHECK (direction IN (1, 2)),
    counterpart_id    UUID     NOT NULL,
    counterpart_name  TEXT     COLLATE "C" NOT NULL,
    total             BIGINT   NOT NULL CHECK (total > 0),
    CONSTRAINT transfer_totals_pk PRIMARY KEY (user_id, direction, counterpart_id)
);

-- Kept by the database, not by the code that inserts the transfer: a
-- trigger adds each transfer to both parties' totals inside the INSERT, so
-- every writer keeps them exact, replicas of the previous version during a
-- rolling upgrade included. Both rows are written only by transfers between
-- these two accounts, whose row locks the movement already holds.
-- +goose StatementBegin
CREATE FUNCTION transfer_totals_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transfer_totals AS tt (user_id, direction, counterpart_id, counterpart_name, total)
    VALUES (NEW.to_user_id, 1, NEW.from_user_id, (SELECT username FROM accounts WHERE user_id = NEW.from_user_id), NEW.amount),
           (NEW.from_user_id, 2, NEW.to_user_id, (SELECT username FROM accounts WHERE user_id = NEW.to_user_id), NEW.amount)
    ON CONFLICT (user_id, direction, counterpart_id) DO UPDATE SET total = tt.total + EXCLUDED.total;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- No transfer may commit between the backfill's snapshot and the trigger:
-- writers wait for this migration (a few seconds per million transfers).
LOCK TABLE transactions IN SHARE MODE;

CREATE TRIGGER transactions_transfer_totals AFTER INSERT ON transactions
    FOR EACH ROW WHEN (NEW.kind = 'transfer') EXECUTE FUNCTION transfer_totals_add();

-- The totals of the history recorded before this migration.
INSERT INTO transfer_totals (user_id, direction, counterpart_id, counterpart_name, total)
SELECT t.to_user_id, 1, t.from_user_id, a.username, sum(t.amount)
  FROM transactions t JOIN accounts a ON a.user_id = t.from_user_id
 WHERE t.kind = 'transfer' GROUP BY t.to_user_id, t.from_user_id, a.username;
INSERT INTO transfer_totals (user_id, direction, counterpart_id, counterpart_name, total)
SELECT t.from_user_id, 2, t.to_user_id, a.username, sum(t.amount)
  FROM transactions t JOIN accounts a ON a.user_id = t.to_user_id
 WHERE t.kind = 'transfer' GROUP BY t.from_user_id, t.to_user_id, a.username;

-- The history is no longer aggregated from transactions: the two partial
-- indexes that served it only cost every transfer two index inserts.
DROP INDEX transactions_sent_idx;
DROP INDEX transactions_received_idx;

-- +goose Down
CREATE INDEX transactions_sent_idx ON transactions (from_user_id, to_user_id) INCLUDE (amount)
    WHERE kind = 'transfer';
CREATE INDEX transactions_received_idx ON transactions (to_user_id, from_user_id) INCLUDE (amount)
    WHERE kind = 'transfer';
DROP TRIGGER IF EXISTS transactions_transfer_totals ON transactions;
DROP FUNCTION IF EXISTS transfer_totals_add();
DROP TABLE IF EXISTS transfer_totals;
