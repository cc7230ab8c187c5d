package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dbs are read-only connections to the services' databases: every session
// has default_transaction_read_only on, so the suite cannot change data
// (the one lock it takes, LOCK TABLE ... IN SHARE MODE, is allowed in a
// read-only transaction and changes nothing).
type dbs struct {
	coins, users, merch *pgxpool.Pool
}

func openDB(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.ConnectTimeout = 3 * time.Second
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "15000"
	cfg.ConnConfig.RuntimeParams["application_name"] = "merch-chaos"
	return pgxpool.NewWithConfig(ctx, cfg)
}

func openDBs(ctx context.Context, c config) (*dbs, error) {
	var d dbs
	var err error
	if d.coins, err = openDB(ctx, c.coinsDSN); err != nil {
		return nil, fmt.Errorf("coins db: %w", err)
	}
	if d.users, err = openDB(ctx, c.userDSN); err != nil {
		return nil, fmt.Errorf("user db: %w", err)
	}
	if d.merch, err = openDB(ctx, c.merchDSN); err != nil {
		return nil, fmt.Errorf("merch db: %w", err)
	}
	return &d, nil
}

func (d *dbs) close() {
	d.coins.Close()
	d.users.Close()
	d.merch.Close()
}

// reset drops pooled connections (after PostgreSQL restarted).
func (d *dbs) reset() {
	d.coins.Reset()
	d.users.Reset()
	d.merch.Reset()
}

// readRetry runs f a bounded number of times: a read may meet a connection
// that PostgreSQL's restart broke.
func readRetry(ctx context.Context, f func(context.Context) error) error {
	var err error
	for i := 0; i < 4; i++ {
		if err = f(ctx); err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(200*(i+1)) * time.Millisecond):
		}
	}
	return err
}

// snapshot is what the databases say about the suite's users.
type snapshot struct {
	// coins
	balances map[string]int64            // user id -> minor units
	txs      map[string]tx               // idempotency key -> transaction
	badTx    []string                    // transactions whose entries do not match them
	ledger   []string                    // accounts (any user) off their ledger or negative
	accounts map[string]string           // user id -> username (suite accounts)
	history  map[[2]string]int64         // (from id, to id) -> transferred minor units
	grants   map[string]grant            // order id -> grant
	invent   map[string]map[string]int64 // user id -> item -> quantity
	orders   map[string]order            // order id -> order
	byKey    map[string]order            // merch idempotency key -> order
	prices   map[string]int64            // item -> price in coins
}

type tx struct {
	id, kind, from, to string
	amount             int64 // minor units
}

type grant struct{ orderID, userID, item string }

type order struct {
	id, userID, item, key, status, failure string
	price                                  int64
}

// read takes the snapshot of the users in ids (with the suite's own
// username prefix in usernames).
func (d *dbs) read(ctx context.Context, ids []string) (*snapshot, error) {
	s := &snapshot{
		balances: map[string]int64{}, txs: map[string]tx{}, accounts: map[string]string{},
		history: map[[2]string]int64{}, grants: map[string]grant{}, invent: map[string]map[string]int64{},
		orders: map[string]order{}, byKey: map[string]order{}, prices: map[string]int64{},
	}
	err := readRetry(ctx, func(ctx context.Context) error {
		return pgx.BeginTxFunc(ctx, d.coins, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(t pgx.Tx) error {
			return s.readCoins(ctx, t, ids)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read coins: %w", err)
	}
	err = readRetry(ctx, func(ctx context.Context) error {
		return pgx.BeginTxFunc(ctx, d.users, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(t pgx.Tx) error {
			return s.readUsers(ctx, t, ids)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	err = readRetry(ctx, func(ctx context.Context) error {
		return pgx.BeginTxFunc(ctx, d.merch, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(t pgx.Tx) error {
			return s.readMerch(ctx, t, ids)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read merch: %w", err)
	}
	return s, nil
}

func (s *snapshot) readCoins(ctx context.Context, t pgx.Tx, ids []string) error {
	clear(s.balances)
	clear(s.txs)
	clear(s.accounts)
	clear(s.history)
	s.badTx, s.ledger = nil, nil
	rows, err := t.Query(ctx, `SELECT user_id::text, username, balance FROM accounts WHERE user_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, name string
		var bal int64
		if err := rows.Scan(&id, &name, &bal); err != nil {
			rows.Close()
			return err
		}
		s.balances[id], s.accounts[id] = bal, name
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	// Every account in the system: balance >= 0 and equal to its entries.
	rows, err = t.Query(ctx, `
		SELECT a.user_id::text, a.username, a.balance, COALESCE(e.total, 0)::bigint
		FROM accounts a
		LEFT JOIN (SELECT user_id, sum(delta) AS total FROM ledger_entries GROUP BY user_id) e USING (user_id)
		WHERE a.balance < 0 OR a.balance <> COALESCE(e.total, 0)`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, name string
		var bal, total int64
		if err := rows.Scan(&id, &name, &bal, &total); err != nil {
			rows.Close()
			return err
		}
		s.ledger = append(s.ledger, fmt.Sprintf("%s (%s): balance %d, entries sum %d (minor units)", name, id, bal, total))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	// The suite's transactions with their entries.
	rows, err = t.Query(ctx, `
		SELECT t.id::text, t.idempotency_key, t.kind, COALESCE(t.from_user_id::text, ''), COALESCE(t.to_user_id::text, ''), t.amount,
		       COALESCE(sum(e.delta) FILTER (WHERE e.user_id = t.from_user_id), 0)::bigint,
		       COALESCE(sum(e.delta) FILTER (WHERE e.user_id = t.to_user_id), 0)::bigint,
		       count(e.id)
		FROM transactions t
		LEFT JOIN ledger_entries e ON e.transaction_id = t.id
		WHERE t.from_user_id = ANY($1::uuid[]) OR t.to_user_id = ANY($1::uuid[])
		GROUP BY t.id`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var x tx
		var key string
		var fromDelta, toDelta, n int64
		if err := rows.Scan(&x.id, &key, &x.kind, &x.from, &x.to, &x.amount, &fromDelta, &toDelta, &n); err != nil {
			return err
		}
		s.txs[key] = x
		want := int64(0)
		ok := true
		if x.from != "" {
			want++
			ok = ok && fromDelta == -x.amount
		}
		if x.to != "" {
			want++
			ok = ok && toDelta == x.amount
		}
		if !ok || n != want {
			s.badTx = append(s.badTx, fmt.Sprintf("transaction %s (%s %s): %d entries, deltas %d/%d, amount %d", x.id, x.kind, key, n, fromDelta, toDelta, x.amount))
		}
		if x.kind == "transfer" {
			s.history[[2]string{x.from, x.to}] += x.amount
		}
	}
	return rows.Err()
}

func (s *snapshot) readUsers(ctx context.Context, t pgx.Tx, ids []string) error {
	clear(s.grants)
	clear(s.invent)
	rows, err := t.Query(ctx, `SELECT order_id::text, user_id::text, item FROM grants WHERE user_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var g grant
		if err := rows.Scan(&g.orderID, &g.userID, &g.item); err != nil {
			rows.Close()
			return err
		}
		s.grants[g.orderID] = g
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = t.Query(ctx, `SELECT user_id::text, item, quantity FROM inventory WHERE user_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var u, item string
		var q int64
		if err := rows.Scan(&u, &item, &q); err != nil {
			return err
		}
		if s.invent[u] == nil {
			s.invent[u] = map[string]int64{}
		}
		s.invent[u][item] = q
	}
	return rows.Err()
}

func (s *snapshot) readMerch(ctx context.Context, t pgx.Tx, ids []string) error {
	clear(s.orders)
	clear(s.byKey)
	clear(s.prices)
	rows, err := t.Query(ctx, `SELECT name, price FROM items`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		var p int64
		if err := rows.Scan(&name, &p); err != nil {
			rows.Close()
			return err
		}
		s.prices[name] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = t.Query(ctx, `
		SELECT id::text, user_id::text, item, price, idempotency_key, status, COALESCE(failure, '')
		FROM orders WHERE user_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var o order
		if err := rows.Scan(&o.id, &o.userID, &o.item, &o.price, &o.key, &o.status, &o.failure); err != nil {
			return err
		}
		s.orders[o.id] = o
		s.byKey[o.key] = o
	}
	return rows.Err()
}

// pendingOrders counts the suite's orders still pending.
func (d *dbs) pendingOrders(ctx context.Context, ids []string) (int, error) {
	var n int
	err := d.merch.QueryRow(ctx, `SELECT count(*) FROM orders WHERE status = 'pending' AND user_id = ANY($1::uuid[])`, ids).Scan(&n)
	return n, err
}

// backlog counts outbox rows (events not yet acknowledged by Kafka) older
// than t, in the one database with an outbox (coins': the ledger's
// transactions).
func (d *dbs) backlog(ctx context.Context, t time.Time) (int, error) {
	var n int
	err := d.coins.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE created_at < $1`, t).Scan(&n)
	return n, err
}
