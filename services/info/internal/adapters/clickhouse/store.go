// Package clickhouse is the history read model in ClickHouse: one row per
// user and ledger transaction in a ReplacingMergeTree, so that a redelivered
// event collapses into the row it repeats.
//
// The server here is Debian's ClickHouse 18.16, so the SQL stays within what
// it knows: no DateTime64 (milliseconds live in created_unix_ms), no Bool,
// Map, CTE, TTL or CODEC, no server-side {name:Type} parameters (the driver
// binds ? on the client), and one statement per Exec.
package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/merchshop/merchshop/services/info/internal/app"
)

// Config locates the table.
type Config struct {
	Addr     string
	Database string
	// Table defaults to "history"; tests use their own.
	Table    string
	Username string
	Password string
	// Wait bounds how long Open waits for the server to answer.
	Wait time.Duration
	// ReadOnly skips creating the database and table (tools).
	ReadOnly bool
}

// Store reads and writes the history table.
type Store struct {
	conn  driver.Conn
	table string // database.table, both validated identifiers
	log   *slog.Logger
}

var _ app.HistoryReader = (*Store)(nil)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Open connects, waits for the server, and creates the database and table
// if missing.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	if cfg.Table == "" {
		cfg.Table = "history"
	}
	if !identifier.MatchString(cfg.Database) || !identifier.MatchString(cfg.Table) {
		return nil, fmt.Errorf("clickhouse: invalid database %q or table %q", cfg.Database, cfg.Table)
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 60 * time.Second
	}
	// The connection names the default database: the service's own may not
	// exist yet. Every statement names database.table.
	conn, err := ch.Open(&ch.Options{
		Addr:         []string{cfg.Addr},
		Auth:         ch.Auth{Database: "default", Username: cfg.Username, Password: cfg.Password},
		DialTimeout:  5 * time.Second,
		MaxOpenConns: 10,
		MaxIdleConns: 5,
		ReadTimeout:  30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse open %s: %w", cfg.Addr, err)
	}
	s := &Store{conn: conn, table: cfg.Database + "." + cfg.Table, log: log}
	if err := s.wait(ctx, cfg.Wait); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if cfg.ReadOnly {
		return s, nil
	}
	if err := s.migrate(ctx, cfg.Database); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) wait(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.conn.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("clickhouse not reachable: %w", err)
		}
		s.log.Warn("waiting for clickhouse", "error", err)
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// migrate creates the schema. ReplacingMergeTree(version) keeps, per sorting
// key (user_id, transaction_id, kind), the row with the highest version once
// parts merge; queries read with FINAL so duplicates not merged yet never
// show. The partition is by month of created_at, which a redelivery repeats,
// so duplicates always share a partition.
func (s *Store) migrate(ctx context.Context, database string) error {
	stmts := []string{
		`CREATE DATABASE IF NOT EXISTS ` + database,
		`CREATE TABLE IF NOT EXISTS ` + s.table + ` (
    user_id         String,
    transaction_id  String,
    kind            String,
    counterpart     String,
    amount          Int64,
    created_at      DateTime,
    created_unix_ms UInt64,
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (user_id, transaction_id, kind)`,
	}
	for _, q := range stmts {
		if err := s.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("clickhouse migrate: %w", err)
		}
	}
	return nil
}

// Ping is the readiness check.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// Close closes the connections.
func (s *Store) Close() error { return s.conn.Close() }

// Drop removes the table (tests).
func (s *Store) Drop(ctx context.Context) error {
	return s.conn.Exec(ctx, `DROP TABLE IF EXISTS `+s.table)
}

// Insert writes entries in one native batch. The version is the insert time,
// so if a row is ever rewritten the latest write wins.
func (s *Store) Insert(ctx context.Context, entries []app.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.table+
		` (user_id, transaction_id, kind, counterpart, amount, created_at, created_unix_ms, version)`)
	if err != nil {
		return fmt.Errorf("clickhouse prepare batch: %w", err)
	}
	version := uint64(time.Now().UnixNano())
	for _, e := range entries {
		if err := batch.Append(e.UserID, e.TransactionID, e.Kind, e.Counterpart, e.Amount,
			e.CreatedAt.UTC(), uint64(e.CreatedAt.UnixMilli()), version); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("clickhouse append: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse send batch: %w", err)
	}
	return nil
}

// Page implements app.HistoryReader with keyset pagination on
// (created_unix_ms, transaction_id), both descending.
func (s *Store) Page(ctx context.Context, userID string, after *app.Cursor, limit int) ([]app.Entry, error) {
	q := `SELECT transaction_id, kind, counterpart, amount, created_unix_ms
FROM ` + s.table + ` FINAL
WHERE user_id = ?`
	args := []any{userID}
	if after != nil {
		q += ` AND (created_unix_ms < ? OR (created_unix_ms = ? AND transaction_id < ?))`
		args = append(args, uint64(after.UnixMs), uint64(after.UnixMs), after.TransactionID)
	}
	q += `
ORDER BY created_unix_ms DESC, transaction_id DESC
LIMIT ?`
	args = append(args, limit)
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse history: %w", err)
	}
	defer func() { _ = rows.Close() }()
	entries := make([]app.Entry, 0, limit)
	for rows.Next() {
		var (
			e  app.Entry
			ms uint64
		)
		if err := rows.Scan(&e.TransactionID, &e.Kind, &e.Counterpart, &e.Amount, &ms); err != nil {
			return nil, fmt.Errorf("clickhouse scan: %w", err)
		}
		e.UserID = userID
		e.CreatedAt = time.UnixMilli(int64(ms)).UTC()
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse history: %w", err)
	}
	return entries, nil
}

// Totals is a user's row count and sum of amounts (whole coins).
type Totals struct {
	Count int64
	Sum   int64
}

// TotalsBefore returns, per user, the number of history rows and the sum of
// their amounts for transactions before the cutoff (reconciliation).
func (s *Store) TotalsBefore(ctx context.Context, cutoff time.Time) (map[string]Totals, error) {
	rows, err := s.conn.Query(ctx, `SELECT user_id, count() AS n, sum(amount) AS total
FROM `+s.table+` FINAL
WHERE created_unix_ms < ?
GROUP BY user_id`, uint64(cutoff.UnixMilli()))
	if err != nil {
		return nil, fmt.Errorf("clickhouse totals: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]Totals{}
	for rows.Next() {
		var (
			user  string
			n     uint64
			total int64
		)
		if err := rows.Scan(&user, &n, &total); err != nil {
			return nil, fmt.Errorf("clickhouse scan totals: %w", err)
		}
		out[user] = Totals{Count: int64(n), Sum: total}
	}
	return out, rows.Err()
}
