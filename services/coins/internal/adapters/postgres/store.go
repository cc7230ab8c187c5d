// Package postgres implements app.Repository on PostgreSQL: accounts, the
// append-only ledger and the outbox, every movement in one REPEATABLE READ
// transaction that locks the accounts it touches in user id order.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// DefaultAttempts bounds the tries of one money movement. At REPEATABLE
// READ a transaction that waited for a row lock held by a transaction that
// then updated the row fails with 40001 and is retried from the start (see
// accountLocks for how this process avoids most of those).
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

// FindUserID implements app.Repository.
func (s *Store) FindUserID(ctx context.Context, username string) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT user_id FROM accounts WHERE username = $1`, username).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, app.ErrNotFound
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("find user: %w", err)
	}
	return id, nil
}

// FindTransaction implements app.Repository.
func (s *Store) FindTransaction(ctx context.Context, key string) (app.StoredTransaction, error) {
	var (
		t    app.StoredTransaction
		id   *uuid.UUID
		code *string
	)
	// A key has one outcome, a transaction or a refusal; should both ever
	// exist (the same key used by two payers at once, which no caller does)
	// the transaction is the answer, so that money that moved is never
	// reported as refused.
	err := s.pool.QueryRow(ctx, `
		SELECT id, request_hash, code FROM (
		    SELECT 0 AS pref, id, request_hash, NULL::text AS code FROM transactions WHERE idempotency_key = $1
		    UNION ALL
		    SELECT 1, NULL, request_hash, code FROM refusals WHERE idempotency_key = $1
		) o ORDER BY pref LIMIT 1`, key).Scan(&id, &t.RequestHash, &code)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, app.ErrNoTransaction
	}
	if err != nil {
		return t, fmt.Errorf("find transaction: %w", err)
	}
	switch {
	case id != nil:
		t.ID = *id
	case code != nil && *code == refusalInsufficientFunds:
		t.Refusal = app.ErrInsufficientFunds
	default:
		return t, fmt.Errorf("find transaction %s: unknown refusal %v", key, code)
	}
	return t, nil
}

type lockedAccount struct {
	username string
	balance  int64
}

// Move implements app.Repository.
func (s *Store) Move(ctx context.Context, m app.Movement) error {
	var parties []uuid.UUID
	for _, id := range []uuid.UUID{m.From, m.To} {
		if id != uuid.Nil {
			parties = append(parties, id)
		}
	}
	// The same order as ORDER BY user_id (uuid compares bytewise), which is
	// the order the rows are locked in.
	slices.SortFunc(parties, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	unlock, err := s.locks.lock(ctx, parties...)
	if err != nil {
		return err
	}
	defer unlock()
	// refused: this attempt recorded a refusal (and committed it).
	var refused bool
	err = s.runTx(ctx, func(tx pgx.Tx) error {
		refused = false
		locked := make(map[uuid.UUID]lockedAccount, 2)
		var recorded bool
		lb := &pgx.Batch{}
		// Lock first: at REPEATABLE READ the snapshot is taken by the first
		// statement, so a lock wait that ends in 40001 wastes nothing.
		lb.Queue(`SELECT user_id, username, balance FROM accounts WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE`, parties).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var (
						id uuid.UUID
						a  lockedAccount
					)
					if err := rows.Scan(&id, &a.username, &a.balance); err != nil {
						return fmt.Errorf("scan account: %w", err)
					}
					locked[id] = a
				}
				return rows.Err()
			})
		// Then, under the payer's lock, whether the key already has an
		// outcome. Every keyed movement of a payer writes the payer's row,
		// a refusal included (below), so whoever takes the lock next either
		// has a snapshot that shows this outcome or fails with 40001 and
		// retries with one that does: two requests with one key can never
		// end one refused and one paid.
		// now() is the transaction's start time, the created_at the
		// transaction row gets below: the event can be built before the
		// write and go out in the write's round trip.
		var at time.Time
		lb.Queue(`SELECT now(), EXISTS (SELECT 1 FROM transactions WHERE idempotency_key = $1)
		             OR EXISTS (SELECT 1 FROM refusals WHERE idempotency_key = $1)`, m.Key).
			QueryRow(func(r pgx.Row) error { return r.Scan(&at, &recorded) })
		if err := tx.SendBatch(ctx, lb).Close(); err != nil {
			return fmt.Errorf("lock accounts: %w", err)
		}
		if recorded {
			return app.ErrDuplicateKey
		}
		var ids []uuid.UUID
		var deltas []int64
		from, to := locked[m.From], locked[m.To]
		if _, ok := locked[m.From]; m.From != uuid.Nil && !ok {
			return app.ErrAccountNotFound
		}
		if _, ok := locked[m.To]; m.To != uuid.Nil && !ok {
			if m.Kind == events.KindTransfer {
				return app.ErrUnknownRecipient
			}
			return app.ErrAccountNotFound
		}
		if m.From != uuid.Nil {
			if from.balance < m.Amount {
				refused = true
				return recordRefusal(ctx, tx, m)
			}
			ids, deltas = append(ids, m.From), append(deltas, -m.Amount)
		}
		if m.To != uuid.Nil {
			ids, deltas = append(ids, m.To), append(deltas, m.Amount)
		}

		ev, err := outbox.Args(transactionEvent(m, from.username, to.username, at))
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		// The transaction row first: a lost race for the key fails here,
		// before any balance changes.
		b.Queue(`INSERT INTO transactions (id, idempotency_key, kind, from_user_id, to_user_id, amount, reason, request_hash)
		         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			m.ID, m.Key, m.Kind, nullID(m.From), nullID(m.To), m.Amount, m.Reason, m.RequestHash)
		b.Queue(`UPDATE accounts a SET balance = a.balance + d.delta
		         FROM unnest($1::uuid[], $2::bigint[]) AS d(user_id, delta) WHERE a.user_id = d.user_id`, ids, deltas)
		b.Queue(`INSERT INTO ledger_entries (transaction_id, user_id, delta, created_at)
		         SELECT $1, d.user_id, d.delta, now() FROM unnest($2::uuid[], $3::bigint[]) AS d(user_id, delta)`,
			m.ID, ids, deltas)
		b.Queue(`INSERT INTO outbox (`+outbox.InsertColumns+`) VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING`, ev...)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record %s: %w", m.Kind, err)
		}
		return nil
	})
	switch {
	case err == nil && refused:
		return app.ErrInsufficientFunds
	case err == nil:
		return nil
	case isUnique(err, constraintKey), isUnique(err, constraintRefusalKey):
		return fmt.Errorf("%w: %w", app.ErrDuplicateKey, err)
	case postgres.IsCheckViolation(err):
		// The balance CHECK backs the explicit test above.
		return fmt.Errorf("%w: %w", app.ErrInsufficientFunds, err)
	}
	return err
}

// recordRefusal records, in the movement's transaction, that m was refused
// for insufficient funds: the refusal becomes the outcome of m.Key, and a
// later request with the key gets it again instead of a new try (see
// app.Service.replay for why). It also writes the payer's row, without
// changing it, so that a refusal serialises with the payer's other keyed
// movements exactly as a payment does: a request with the same key that
// waited for the row lock fails with 40001 and, retried, sees the refusal.
// Without that write it would go on with its snapshot from before the
// refusal and not see it: the same request would read the same balance and
// be refused again (a top-up in between writes the row, which forces the
// retry), but a different request with the key, for a smaller amount, would
// pay, and the key would have two outcomes.
func recordRefusal(ctx context.Context, tx pgx.Tx, m app.Movement) error {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO refusals (idempotency_key, kind, from_user_id, to_user_id, amount, code, request_hash)
	         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		m.Key, m.Kind, m.From, nullID(m.To), m.Amount, refusalInsufficientFunds, m.RequestHash)
	b.Queue(`UPDATE accounts SET balance = balance WHERE user_id = $1`, m.From)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record refusal of %s: %w", m.Kind, err)
	}
	return nil
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

// Balance implements app.Repository.
func (s *Store) Balance(ctx context.Context, userID uuid.UUID) (int64, error) {
	var b int64
	err := s.pool.QueryRow(ctx, `SELECT balance FROM accounts WHERE user_id = $1`, userID).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, app.ErrAccountNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("balance: %w", err)
	}
	return b, nil
}

// historySQL sums a user's transfers per counterpart ($1), ordered by
// username bytewise (COLLATE "C": the same order whatever the database
// locale); part is 1 for received, 2 for sent.
const historySQL = `
		SELECT g.part, a.username, g.total FROM (
		    SELECT 1 AS part, from_user_id AS counterpart, sum(amount)::bigint AS total
		      FROM transactions WHERE kind = 'transfer' AND to_user_id = $1 GROUP BY from_user_id
		    UNION ALL
		    SELECT 2, to_user_id, sum(amount)::bigint
		      FROM transactions WHERE kind = 'transfer' AND from_user_id = $1 GROUP BY to_user_id
		) g JOIN accounts a ON a.user_id = g.counterpart`

// History implements app.Repository: transfers only, summed per
// counterpart.
func (s *Store) History(ctx context.Context, userID uuid.UUID) (app.History, error) {
	o, _, err := s.overview(ctx, `SELECT * FROM (`+historySQL+`) h ORDER BY part, username COLLATE "C"`, userID)
	if err != nil {
		return app.History{}, fmt.Errorf("history: %w", err)
	}
	return o.History, nil
}

// Overview implements app.Repository: the balance (part 0) and the history
// in one statement, so from one snapshot and in one round trip.
func (s *Store) Overview(ctx context.Context, userID uuid.UUID) (app.Overview, error) {
	o, found, err := s.overview(ctx, `SELECT * FROM (
		SELECT 0 AS part, ''::text AS username, balance AS total FROM accounts WHERE user_id = $1
		UNION ALL`+historySQL+`) h ORDER BY part, username COLLATE "C"`, userID)
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
