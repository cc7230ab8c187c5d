// Package postgres connects to PostgreSQL, applies a service's embedded
// migrations, and runs transactions that retry serialization failures and
// deadlocks.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// Connect opens a pool and waits, up to wait, for the server to answer.
func Connect(ctx context.Context, log *slog.Logger, dsn string, maxConns int32, wait time.Duration) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err == nil {
			return pool, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres %s not reachable: %w", cfg.ConnConfig.Host, err)
		}
		log.Warn("waiting for postgres", "error", err)
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// Migrate applies every migration in dir of fsys that is not applied yet,
// recording versions in the table versionTable (one per migration set).
// Concurrent starts are serialised by goose's advisory lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, dir, versionTable string) error {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return fmt.Errorf("migrations dir: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := newLocker()
	if err != nil {
		return err
	}
	store, err := database.NewStore(database.DialectPostgres, versionTable)
	if err != nil {
		return fmt.Errorf("migrations store: %w", err)
	}
	p, err := goose.NewProvider("", db, sub,
		goose.WithStore(store), goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// TxOptions controls RunTx.
type TxOptions struct {
	// Isolation defaults to REPEATABLE READ.
	Isolation pgx.TxIsoLevel
	// Attempts bounds the retries of serialization failures and deadlocks;
	// 0 means 8.
	Attempts int
}

// ErrRetriesExhausted wraps the last serialization failure or deadlock when
// every attempt failed.
var ErrRetriesExhausted = errors.New("transaction retries exhausted")

// RunTx runs fn in a transaction and commits it. A serialization failure
// (40001) or deadlock (40P01), from fn or from the commit, rolls back and
// runs fn again after a short jittered backoff, up to the attempt bound. fn
// must not have effects outside the transaction.
func RunTx(ctx context.Context, pool *pgxpool.Pool, opts TxOptions, fn func(pgx.Tx) error) error {
	iso := opts.Isolation
	if iso == "" {
		iso = pgx.RepeatableRead
	}
	attempts := opts.Attempts
	if attempts <= 0 {
		attempts = 8
	}
	var last error
	for i := range attempts {
		err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: iso}, fn)
		if err == nil {
			return nil
		}
		if !IsRetryable(err) {
			return err
		}
		last = err
		if err := Backoff(ctx, i); err != nil {
			return fmt.Errorf("%w: %w", err, last)
		}
	}
	return fmt.Errorf("%w after %d attempts: %w", ErrRetriesExhausted, attempts, last)
}

// Backoff waits before retry number attempt+1 of a transaction: 1 ms
// doubling up to 64 ms, plus as much again of jitter. It returns ctx's
// error when ctx ends first.
func Backoff(ctx context.Context, attempt int) error {
	backoff := time.Duration(1<<min(attempt, 6)) * time.Millisecond
	backoff += time.Duration(rand.Int64N(int64(backoff) + 1))
	t := time.NewTimer(backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// IsRetryable reports a serialization failure or a deadlock.
func IsRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return false
}

// IsUniqueViolation reports a unique constraint violation (23505).
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// IsCheckViolation reports a CHECK constraint violation (23514).
func IsCheckViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514"
}
