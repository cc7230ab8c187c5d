package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Ledger is what the coins database says.
type Ledger struct {
	// Before: per user, entries of transactions created before the cutoff.
	Before map[string]Totals
	// All: per user, every entry.
	All       map[string]Totals
	Balances  map[string]int64
	Usernames map[string]string
	// Transfers: transfers summed per (user, direction, counterpart), from
	// the transactions; Running: the coins service's running totals of the
	// same (transfer_totals, what GET /api/info lists).
	Transfers map[Pair]int64
	Running   map[Pair]int64
}

// Pair is one line of a user's grouped history: what UserID received from
// (Direction 1) or sent to (2) Counterpart.
type Pair struct {
	UserID      string
	Direction   int
	Counterpart string
}

// transfersSQL sums the transfers per (user, direction, counterpart), the
// definition of transfer_totals.
const transfersSQL = `
SELECT to_user_id::text, 1, from_user_id::text, sum(amount)::bigint
  FROM transactions WHERE kind = 'transfer' GROUP BY to_user_id, from_user_id
UNION ALL
SELECT from_user_id::text, 2, to_user_id::text, sum(amount)::bigint
  FROM transactions WHERE kind = 'transfer' GROUP BY from_user_id, to_user_id`

// entriesSQL: one ledger entry per (transaction, involved user), signed for
// that user, in minor units.
const entriesSQL = `
SELECT user_id::text, count(*), COALESCE(sum(delta), 0)::bigint
FROM (
    SELECT from_user_id AS user_id, -amount AS delta, created_at
    FROM transactions WHERE from_user_id IS NOT NULL
    UNION ALL
    SELECT to_user_id AS user_id, amount AS delta, created_at
    FROM transactions WHERE to_user_id IS NOT NULL
) e
WHERE $1::timestamptz IS NULL OR created_at < $1::timestamptz
GROUP BY user_id`

// ReadLedger reads the coins service's tables in one READ ONLY, REPEATABLE
// READ transaction, so balances and entries come from one snapshot. It is
// the only code outside the coins service that reads them (an operations
// tool), and it reads only transactions(kind, from_user_id, to_user_id,
// amount, created_at), accounts(user_id, username, balance) and
// transfer_totals(user_id, direction, counterpart_id, total).
func ReadLedger(ctx context.Context, pool *pgxpool.Pool, cutoff time.Time) (Ledger, error) {
	l := Ledger{Balances: map[string]int64{}, Usernames: map[string]string{}}
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if l.Before, err = entryTotals(ctx, tx, &cutoff); err != nil {
			return err
		}
		if l.All, err = entryTotals(ctx, tx, nil); err != nil {
			return err
		}
		if l.Transfers, err = pairTotals(ctx, tx, transfersSQL); err != nil {
			return err
		}
		if l.Running, err = pairTotals(ctx, tx,
			`SELECT user_id::text, direction, counterpart_id::text, total FROM transfer_totals`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT user_id::text, username, balance FROM accounts`)
		if err != nil {
			return fmt.Errorf("read accounts: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				user, name string
				balance    int64
			)
			if err := rows.Scan(&user, &name, &balance); err != nil {
				return fmt.Errorf("read accounts: %w", err)
			}
			l.Balances[user], l.Usernames[user] = balance, name
		}
		return rows.Err()
	})
	if err != nil {
		return Ledger{}, err
	}
	return l, nil
}

func entryTotals(ctx context.Context, tx pgx.Tx, before *time.Time) (map[string]Totals, error) {
	rows, err := tx.Query(ctx, entriesSQL, before)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer rows.Close()
	out := map[string]Totals{}
	for rows.Next() {
		var (
			user string
			t    Totals
		)
		if err := rows.Scan(&user, &t.Count, &t.SumMinor); err != nil {
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		out[user] = t
	}
	return out, rows.Err()
}

func pairTotals(ctx context.Context, tx pgx.Tx, query string) (map[Pair]int64, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read transfer totals: %w", err)
	}
	defer rows.Close()
	out := map[Pair]int64{}
	for rows.Next() {
		var (
			p     Pair
			total int64
		)
		if err := rows.Scan(&p.UserID, &p.Direction, &p.Counterpart, &total); err != nil {
			return nil, fmt.Errorf("read transfer totals: %w", err)
		}
		out[p] = total
	}
	return out, rows.Err()
}
