// Package postgres implements app.Repository on PostgreSQL: accounts, the
// append-only ledger and the outbox, every movement in one READ COMMITTED
// transaction that locks the accounts it touches in user id order.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/merchshop/merchshop/pkg/events"
	"github.com/merchshop/merchshop/pkg/outbox"
	"github.com/merchshop/merchshop/pkg/postgres"

	"github.com/merchshop/merchshop/services/coins/internal/app"
)

// DefaultAttempts bounds the tries of one money movement. A movement is
// retried on a deadlock (which its lock order rules out), a serialization
// failure (which READ COMMITTED does not raise on row locks) or a lost race
// for its idempotency key (two payers with one key); the account
// transactions at REPEATABLE READ (runTx) retry their 40001s.
const DefaultAttempts = 16

// lockStripes is the number of in-process account lock stripes.
const lockStripes = 1024

// Store is the PostgreSQL repository.
type Store struct {
	pool     *pgxpool.Pool
	attempts int
	locks    *accountLocks
}

var _ app.Repository = (*Store)(nil)

// New returns a store over pool; attempts <= 0 means DefaultAttempts.
func New(pool *pgxpool.Pool, attempts int) *Store {
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	return &Store{pool: pool, attempts: attempts, locks: newAccountLocks(lockStripes)}
}

const constraintKey = "transactions_idempotency_key_uq"
const constraintUsername = "accounts_username_uq"
const constraintRefusalKey = "refusals_pk"

// refusalInsufficientFunds is the stored code of a refusal for
// insufficient funds (refusals.code).
const refusalInsufficientFunds = "insufficient_funds"

// OpenAccount implements app.Repository.
func (s *Store) OpenAccount(ctx context.Context, userID uuid.UUID, username string, grant int64, key, hash string) (int64, bool, error) {
	var (
		balance int64
		created bool
	)
	// Every login opens the account, and almost always it exists: one
	// read answers that without a transaction (accounts are never deleted,
	// and an existing account is exactly what the transaction below would
	// report too). Only a missing account takes the transaction.
	err := s.pool.QueryRow(ctx, `SELECT balance FROM accounts WHERE user_id = $1`, userID).Scan(&balance)
	if err == nil {
		return balance, false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("find account: %w", err)
	}
	err = s.runTx(ctx, func(tx pgx.Tx) error {
		var createdAt time.Time
		// ON CONFLICT on the primary key only: a username held by another
		// user is a unique violation, not a silent no-op.
		err := tx.QueryRow(ctx,
			`INSERT INTO accounts (user_id, username, balance) VALUES ($1, $2, $3)
			 ON CONFLICT (user_id) DO NOTHING RETURNING created_at`,
			userID, username, grant).Scan(&createdAt)
		if errors.Is(err, pgx.ErrNoRows) {
			created = false
			return tx.QueryRow(ctx, `SELECT balance FROM accounts WHERE user_id = $1`, userID).Scan(&balance)
		}
		if err != nil {
			return fmt.Errorf("insert account: %w", err)
		}
		created, balance = true, grant
		txID := uuid.New()
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO transactions (id, idempotency_key, kind, to_user_id, amount, reason, request_hash, created_at)
		         VALUES ($1, $2, 'grant', $3, $4, 'welcome', $5, $6)`, txID, key, userID, grant, hash, createdAt)
		b.Queue(`INSERT INTO ledger_entries (transaction_id, user_id, delta, created_at) VALUES ($1, $2, $3, $4)`,
			txID, userID, grant, createdAt)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record grant: %w", err)
		}
		return outbox.Add(ctx, tx, transactionEvent(app.Movement{
			ID: txID, Kind: events.KindGrant, To: userID, Amount: grant, Reason: "welcome",
		}, "", username, createdAt))
	})
	if isUnique(err, constraintUsername) {
		// The name's holder may be this very user: a concurrent open of the
		// same account committed first, and the insert hit the username
		// index before the user_id one. PostgreSQL raises the violation only
		// once that transaction committed, so a fresh read sees its row.
		if err := s.pool.QueryRow(ctx, `SELECT balance FROM accounts WHERE user_id = $1`, userID).Scan(&balance); err == nil {
			return balance, false, nil
		}
		return 0, false, fmt.Errorf("open %s: %w", userID, app.ErrUsernameTaken)
	}
	if err != nil {
		return 0, false, err
	}
	return balance, created, nil
}

// Move implements app.Repository in two round trips: one batch begins the
// transaction, locks the accounts and reads the key's outcome; decide
// rules; a second batch writes what it decided and commits (or, when
// nothing is to be written, the transaction is rolled back).
//
// Before PostgreSQL, the movement queues for this process's stripes of the
// accounts it knows by id (see accountLocks): a transfer's recipient, known
// by name, waits for its row lock in PostgreSQL instead.
func (s *Store) Move(ctx context.Context, req app.MoveRequest, decide app.Decide) error {
	known := make([]uuid.UUID, 0, 2)
	for _, id := range []uuid.UUID{req.From, req.To} {
		if id != uuid.Nil {
			known = append(known, id)
		}
	}
	var last error
	for i := range s.attempts {
		unlock, err := s.locks.lock(ctx, known...)
		if err != nil {
			return err
		}
		err = s.moveOnce(ctx, req, decide)
		unlock()
		if err == nil || !retryable(err) {
			return err
		}
		last = err
		if err := postgres.Backoff(ctx, i); err != nil {
			return fmt.Errorf("%w: %w", err, last)
		}
	}
	return fmt.Errorf("%w: %w after %d attempts: %w", app.ErrBusy, postgres.ErrRetriesExhausted, s.attempts, last)
}

// retryable: a serialization failure or deadlock, or a lost race for the
// idempotency key (its winner committed: the next attempt reads its
// outcome).
func retryable(err error) bool {
	return postgres.IsRetryable(err) || isUnique(err, constraintKey) || isUnique(err, constraintRefusalKey)
}

// lockSQL locks the accounts of a movement in user id order (the order
// every movement locks in, so two cannot deadlock): the payer and payee by
// id ($1), the payee of a transfer by username ($2, ” for none; no
// account has an empty name).
const lockSQL = `SELECT user_id, username, balance FROM accounts
		WHERE user_id = ANY($1) OR username = $2 ORDER BY user_id FOR UPDATE`

// outcomeSQL reads the transaction's time and the key's outcome, if any: a
// transaction or a refusal. Should both ever exist (one key used by two
// payers at once, which no caller does) the transaction is the answer, so
// that money that moved is never reported as refused. now() is the
// transaction's start, the created_at its rows get: the event is built
// before the write and goes out in the write's round trip.
const outcomeSQL = `SELECT now(), o.id, o.request_hash, o.code FROM (SELECT) one LEFT JOIN LATERAL (
		    SELECT 0 AS pref, id, request_hash, NULL::text AS code FROM transactions WHERE idempotency_key = $1
		    UNION ALL
		    SELECT 1, NULL, request_hash, code FROM refusals WHERE idempotency_key = $1
		    ORDER BY pref LIMIT 1
		) o ON true`

// moveOnce is one attempt of Move on a connection of its own.
func (s *Store) moveOnce(ctx context.Context, req app.MoveRequest, decide app.Decide) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	// A connection left inside a transaction is closed by Release, never
	// reused; every path below ends the transaction or fails.
	defer conn.Release()
	ended := false
	defer func() {
		if !ended {
			rollback(conn)
		}
	}()

	var ids []uuid.UUID
	for _, id := range []uuid.UUID{req.From, req.To} {
		if id != uuid.Nil {
			ids = append(ids, id)
		}
	}
	var (
		l     app.Locked
		found []app.Account
		id    *uuid.UUID
		hash  *string
		code  *string
	)
	// READ COMMITTED, lock first: SELECT ... FOR UPDATE that waits for
	// a row gets the version its holder committed (never a serialization
	// failure), and the outcome read after it takes a snapshot after the
	// locks are granted, so it sees every outcome committed under the
	// payer's lock. Every keyed movement of a payer, a refusal included,
	// holds that lock until it commits, so two requests with one key can
	// never end one refused and one paid.
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	b.Queue(lockSQL, ids, req.ToName).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var a app.Account
			if err := rows.Scan(&a.ID, &a.Username, &a.Balance); err != nil {
				return fmt.Errorf("scan account: %w", err)
			}
			found = append(found, a)
		}
		return rows.Err()
	})
	b.Queue(outcomeSQL, req.Key).QueryRow(func(r pgx.Row) error { return r.Scan(&l.At, &id, &hash, &code) })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("lock accounts: %w", err)
	}
	for i := range found {
		a := &found[i]
		if a.ID == req.From {
			l.From = a
		}
		if (req.To != uuid.Nil && a.ID == req.To) || (req.ToName != "" && a.Username == req.ToName) {
			l.To = a
		}
	}
	switch {
	case id != nil:
		l.Outcome = &app.StoredTransaction{ID: *id, RequestHash: *hash}
	case code != nil && *code == refusalInsufficientFunds:
		l.Outcome = &app.StoredTransaction{RequestHash: *hash, Refusal: app.ErrInsufficientFunds}
	case code != nil:
		return fmt.Errorf("key %s: unknown refusal %q", req.Key, *code)
	}

	d, err := decide(ctx, l)
	if err != nil {
		return err
	}
	if !d.CommitBy.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.CommitBy)
		defer cancel()
	}
	w := &pgx.Batch{}
	switch d.Verdict {
	case app.WriteNothing:
		return nil
	case app.WriteRefusal:
		queueRefusal(w, d.Movement)
	case app.WriteMovement:
		if err := queueMovement(w, d.Movement, l); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown verdict %d", d.Verdict)
	}
	w.Queue(`COMMIT`)
	err = conn.SendBatch(ctx, w).Close()
	if err == nil && conn.Conn().PgConn().TxStatus() != 'I' {
		err = errors.New("commit did not end the transaction")
	}
	if err != nil {
		if postgres.IsCheckViolation(err) {
			// The balance CHECK backs decide's test of the funds.
			return fmt.Errorf("record %s: %w: %w", d.Movement.Kind, app.ErrInsufficientFunds, err)
		}
		return fmt.Errorf("record %s: %w", d.Movement.Kind, err)
	}
	ended = true
	return nil
}

// rollback ends a transaction that is not to commit. When that fails the
// connection is closed, which ends the transaction on the server side.
func rollback(conn *pgxpool.Conn) {
	if conn.Conn().PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `ROLLBACK`); err != nil {
		_ = conn.Conn().Close(ctx)
	}
}

// queueMovement queues the writes of m: the transaction row first (a lost
// race for the key fails there, before any balance changes; for a transfer
// its trigger adds it to both parties' transfer_totals), the balances, the
// ledger entries and the event.
func queueMovement(b *pgx.Batch, m app.Movement, l app.Locked) error {
	var (
		ids    []uuid.UUID
		deltas []int64
		from   app.Account
		to     app.Account
	)
	if m.From != uuid.Nil {
		from = *l.From
		ids, deltas = append(ids, m.From), append(deltas, -m.Amount)
	}
	if m.To != uuid.Nil {
		to = *l.To
		ids, deltas = append(ids, m.To), append(deltas, m.Amount)
	}
	ev, err := outbox.Args(transactionEvent(m, from.Username, to.Username, l.At))
	if err != nil {
		return err
	}
	b.Queue(`INSERT INTO transactions (id, idempotency_key, kind, from_user_id, to_user_id, amount, reason, request_hash)
	         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		m.ID, m.Key, m.Kind, nullID(m.From), nullID(m.To), m.Amount, m.Reason, m.RequestHash)
	b.Queue(`UPDATE accounts a SET balance = a.balance + d.delta
	         FROM unnest($1::uuid[], $2::bigint[]) AS d(user_id, delta) WHERE a.user_id = d.user_id`, ids, deltas)
	b.Queue(`INSERT INTO ledger_entries (transaction_id, user_id, delta, created_at)
	         SELECT $1, d.user_id, d.delta, now() FROM unnest($2::uuid[], $3::bigint[]) AS d(user_id, delta)`,
		m.ID, ids, deltas)
	b.Queue(`INSERT INTO outbox (`+outbox.InsertColumns+`) VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING`, ev...)
	return nil
}

// queueRefusal queues the record that m was refused for insufficient
// funds: the refusal becomes the outcome of m.Key, and a later request with
// the key gets it again instead of a new try (see app's decide for why). A
// request with the same key that waits for the payer's lock meanwhile reads
// the refusal once it has the lock (see moveOnce).
func queueRefusal(b *pgx.Batch, m app.Movement) {
	b.Queue(`INSERT INTO refusals (idempotency_key, kind, from_user_id, to_user_id, amount, code, request_hash)
	         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		m.Key, m.Kind, m.From, nullID(m.To), m.Amount, refusalInsufficientFunds, m.RequestHash)
}

// transactionEvent is the event of a recorded transaction (amounts in
// coins, as every consumer reads them).
func transactionEvent(m app.Movement, fromName, toName string, at time.Time) outbox.Event {
	ev := events.Transaction{
		EventID:       outbox.NewID(),
		TransactionID: m.ID.String(),
		Kind:          m.Kind,
		FromUsername:  fromName,
		ToUsername:    toName,
		Amount:        app.ToCoins(m.Amount),
		Reason:        m.Reason,
		CreatedAt:     at.UTC(),
	}
	key := m.To
	if m.From != uuid.Nil {
		ev.FromUserID = m.From.String()
		key = m.From
	}
	if m.To != uuid.Nil {
		ev.ToUserID = m.To.String()
	}
	return outbox.Event{ID: ev.EventID, Topic: events.TopicTransactions, Key: key.String(), Payload: ev}
}

// historySQL lists a user's ($1) transfer totals per counterpart: part 1
// received, 2 sent (transfer_totals.direction).
const historySQL = `
		SELECT direction::int AS part, counterpart_name AS username, total FROM transfer_totals WHERE user_id = $1`

// Overview implements app.Repository: the balance (part 0) and the
// transfer totals in one statement, so from one snapshot and in one round
// trip, ordered by username bytewise (the column's collation is "C").
func (s *Store) Overview(ctx context.Context, userID uuid.UUID) (app.Overview, error) {
	o, found, err := s.overview(ctx, `SELECT * FROM (
		SELECT 0 AS part, ''::text COLLATE "C" AS username, balance AS total FROM accounts WHERE user_id = $1
		UNION ALL`+historySQL+`) h ORDER BY part, username`, userID)
	if err != nil {
		return app.Overview{}, fmt.Errorf("overview: %w", err)
	}
	if !found {
		return app.Overview{}, app.ErrAccountNotFound
	}
	return o, nil
}

// overview runs a query of (part, username, amount) rows: part 0 is the
// balance (found reports whether it came), 1 a received total, 2 a sent one.
func (s *Store) overview(ctx context.Context, query string, userID uuid.UUID) (o app.Overview, found bool, err error) {
	rows, err := s.pool.Query(ctx, query, userID)
	if err != nil {
		return app.Overview{}, false, err
	}
	defer rows.Close()
	o.Received, o.Sent = []app.Counterpart{}, []app.Counterpart{}
	for rows.Next() {
		var (
			part int32
			c    app.Counterpart
		)
		if err := rows.Scan(&part, &c.Username, &c.Amount); err != nil {
			return app.Overview{}, false, fmt.Errorf("scan: %w", err)
		}
		switch part {
		case 0:
			o.Balance, found = c.Amount, true
		case 1:
			o.Received = append(o.Received, c)
		default:
			o.Sent = append(o.Sent, c)
		}
	}
	if err := rows.Err(); err != nil {
		return app.Overview{}, false, err
	}
	return o, found, nil
}

// runTx runs fn at REPEATABLE READ with bounded retries of serialization
// failures and deadlocks; when they run out the caller gets app.ErrBusy.
func (s *Store) runTx(ctx context.Context, fn func(pgx.Tx) error) error {
	err := postgres.RunTx(ctx, s.pool, postgres.TxOptions{Isolation: pgx.RepeatableRead, Attempts: s.attempts}, fn)
	if errors.Is(err, postgres.ErrRetriesExhausted) {
		return fmt.Errorf("%w: %w", app.ErrBusy, err)
	}
	return err
}

func isUnique(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return postgres.IsUniqueViolation(err) && errors.As(err, &pgErr) && pgErr.ConstraintName == constraint
}

func nullID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}
