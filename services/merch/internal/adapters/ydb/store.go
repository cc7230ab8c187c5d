// Package ydb is the merch service's YDB store (MERCH_STORE=ydb): the
// catalog and the orders.
//
// YDB has no SELECT ... FOR UPDATE SKIP LOCKED, and its transactions are
// optimistic: a serializable transaction whose reads were overwritten by a
// concurrent commit fails with "transaction locks invalidated" and the
// SDK's DoTx runs it again. Every read-modify-write
// below is therefore "read the rows, decide in Go, write", inside one
// DoTx, written so that running it again after a conflict (or after a
// commit whose answer was lost) does the right thing: leases and claims are
// conditions re-checked on the re-read rows.
package ydb

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	ydbsdk "github.com/ydb-platform/ydb-go-sdk/v3"
	"github.com/ydb-platform/ydb-go-sdk/v3/query"
	"github.com/ydb-platform/ydb-go-sdk/v3/sugar"
	"github.com/ydb-platform/ydb-go-sdk/v3/types"

	"github.com/merchshop/merchshop/services/merch/internal/app"
)

// Catalog is the merch of the assignment, prices in whole coins; Migrate
// inserts the items that are missing (the same rows as the PostgreSQL
// migration 00002_catalog.sql).
var Catalog = []app.Item{
	{Name: "t-shirt", Price: 80}, {Name: "cup", Price: 20}, {Name: "book", Price: 50},
	{Name: "pen", Price: 10}, {Name: "powerbank", Price: 200}, {Name: "hoody", Price: 300},
	{Name: "umbrella", Price: 200}, {Name: "socks", Price: 10}, {Name: "wallet", Price: 50},
	{Name: "pink-hoody", Price: 500},
}

// Config places the tables.
type Config struct {
	// Prefix is the directory of the tables: relative to the database (or
	// absolute, starting with the database path). Empty: the database root.
	Prefix string
}

// Open connects to YDB. endpoint is like grpc://localhost:2136 (grpcs://
// for TLS; a bare host:port means grpc://), database like /local.
func Open(ctx context.Context, endpoint, database string, opts ...ydbsdk.Option) (*ydbsdk.Driver, error) {
	db, err := ydbsdk.Open(ctx, DSN(endpoint, database), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to ydb %s%s: %w", endpoint, database, err)
	}
	return db, nil
}

// DSN joins an endpoint and a database into the SDK's connection string.
func DSN(endpoint, database string) string {
	endpoint = strings.TrimRight(endpoint, "/")
	if !strings.Contains(endpoint, "://") {
		endpoint = "grpc://" + endpoint
	}
	return endpoint + "/" + strings.TrimLeft(database, "/")
}

// tables is how queries name the tables: prefixed by a pragma.
type tables struct {
	dir    string // absolute directory of the tables
	pragma string // PRAGMA TablePathPrefix, or "" for the database root
}

func newTables(db *ydbsdk.Driver, cfg Config) (tables, error) {
	return tablesFor(db.Name(), cfg.Prefix)
}

// tablesFor places the tables of prefix in the database named database.
func tablesFor(database, prefix string) (tables, error) {
	root := "/" + strings.Trim(database, "/")
	p := strings.Trim(prefix, "/")
	if p == "" {
		return tables{dir: root}, nil
	}
	if strings.ContainsAny(p, "\"'`\\\n\r\t ") {
		return tables{}, fmt.Errorf("ydb table prefix %q: quotes, backslashes and spaces are not allowed", prefix)
	}
	dir := "/" + p
	if !strings.HasPrefix(dir+"/", root+"/") {
		dir = path.Join(root, p)
	}
	return tables{dir: dir, pragma: `PRAGMA TablePathPrefix("` + dir + `");` + "\n"}, nil
}

// yql prefixes a statement with the table path pragma.
func (t tables) yql(body string) string { return t.pragma + body }

// Store implements app.Store on YDB.
type Store struct {
	db  *ydbsdk.Driver
	t   tables
	now func() time.Time
}

var _ app.Store = (*Store)(nil)

// New returns a store on db. Call Migrate before use.
func New(db *ydbsdk.Driver, cfg Config) (*Store, error) {
	t, err := newTables(db, cfg)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, t: t, now: now}, nil
}

// now is the time the store writes. YDB timestamps have microseconds, so
// the value is truncated to what reads give back. Leases compare times of
// different replicas: their clocks are assumed synchronised (NTP) to well
// within the recovery age, which is seconds.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Order statuses as stored.
const (
	statusPending   = string(app.StatusPending)
	statusCompleted = string(app.StatusCompleted)
	statusFailed    = string(app.StatusFailed)
)

// Schema. Strings are Utf8, ids are UUID texts, prices whole coins.
//   - order_keys makes (user, idempotency key) name one order: YDB row
//     tables have no unique constraint besides the primary key.
//   - orders_status_updated lets the recovery find old pending orders
//     without scanning the table.
//   - the outbox table of earlier versions is no longer written; it may be dropped.
var schema = []struct{ name, ddl string }{
	{"items", `CREATE TABLE items (
		name  Utf8  NOT NULL,
		price Int64 NOT NULL,
		PRIMARY KEY (name)
	);`},
	{"orders", `CREATE TABLE orders (
		id              Utf8      NOT NULL,
		user_id         Utf8      NOT NULL,
		item            Utf8      NOT NULL,
		price           Int64     NOT NULL,
		idempotency_key Utf8      NOT NULL,
		status          Utf8      NOT NULL,
		failure         Utf8,
		created_at      Timestamp NOT NULL,
		updated_at      Timestamp NOT NULL,
		PRIMARY KEY (id),
		INDEX orders_status_updated GLOBAL SYNC ON (status, updated_at)
	);`},
	{"order_keys", `CREATE TABLE order_keys (
		user_id         Utf8 NOT NULL,
		idempotency_key Utf8 NOT NULL,
		order_id        Utf8 NOT NULL,
		PRIMARY KEY (user_id, idempotency_key)
	);`},
}

// Dir is the absolute directory of the store's tables.
func (s *Store) Dir() string { return s.t.dir }

// Tables lists the store's tables (for tests and tools that drop them).
func Tables() []string {
	names := make([]string, len(schema))
	for i, t := range schema {
		names[i] = t.name
	}
	return names
}

// Migrate creates the tables that do not exist yet and inserts the catalog
// items that are missing (existing prices are left alone). It is safe to
// run from several replicas at once. It asks the scheme whether each table
// exists rather than relying on CREATE TABLE IF NOT EXISTS, which older
// servers do not know; a CREATE that fails because another replica got
// there first is recognised by asking again.
func (s *Store) Migrate(ctx context.Context) error {
	if s.t.pragma != "" {
		// MakeDirectory creates the missing parents and accepts an existing
		// directory.
		if err := s.db.Scheme().MakeDirectory(ctx, s.t.dir); err != nil && !ydbsdk.IsOperationErrorAlreadyExistsError(err) {
			return fmt.Errorf("ydb make directory %s: %w", s.t.dir, err)
		}
	}
	for _, t := range schema {
		full := path.Join(s.t.dir, t.name)
		exists, err := sugar.IsTableExists(ctx, s.db.Scheme(), full)
		if err != nil {
			return fmt.Errorf("ydb look up table %s: %w", full, err)
		}
		if exists {
			continue
		}
		if err := s.db.Query().Exec(ctx, s.t.yql(t.ddl)); err != nil {
			if exists, lerr := sugar.IsTableExists(ctx, s.db.Scheme(), full); lerr == nil && exists {
				continue
			}
			return fmt.Errorf("ydb create table %s: %w", full, err)
		}
	}
	return s.seed(ctx)
}

func (s *Store) seed(ctx context.Context) error {
	names := make([]string, len(Catalog))
	for i, it := range Catalog {
		names[i] = it.Name
	}
	err := s.db.Query().DoTx(ctx, func(ctx context.Context, tx query.TxActor) error {
		rs, err := tx.QueryResultSet(ctx, s.t.yql(`
			DECLARE $names AS List<Utf8>;
			SELECT name FROM items WHERE name IN $names;`),
			query.WithParameters(ydbsdk.ParamsBuilder().Param("$names").Any(textList(names)).Build()))
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for row, err := range rs.Rows(ctx) {
			if err != nil {
				_ = rs.Close(ctx)
				return err
			}
			var name string
			if err := row.Scan(&name); err != nil {
				_ = rs.Close(ctx)
				return err
			}
			have[name] = true
		}
		if err := rs.Close(ctx); err != nil {
			return err
		}
		var rows []types.Value
		for _, it := range Catalog {
			if !have[it.Name] {
				rows = append(rows, types.StructValue(
					types.StructFieldValue("name", types.TextValue(it.Name)),
					types.StructFieldValue("price", types.Int64Value(it.Price)),
				))
			}
		}
		if len(rows) == 0 {
			return nil
		}
		return tx.Exec(ctx, s.t.yql(`
			DECLARE $items AS List<Struct<name: Utf8, price: Int64>>;
			UPSERT INTO items SELECT name, price FROM AS_TABLE($items);`),
			query.WithParameters(ydbsdk.ParamsBuilder().Param("$items").Any(types.ListValue(rows...)).Build()))
	}, query.WithIdempotent(), serializable())
	if err != nil {
		return fmt.Errorf("ydb seed catalog: %w", err)
	}
	return nil
}

func serializable() query.DoTxOption {
	return query.WithTxSettings(query.TxSettings(query.WithSerializableReadWrite()))
}

// ListItems implements app.Store.
func (s *Store) ListItems(ctx context.Context) ([]app.Item, error) {
	var items []app.Item
	err := s.db.Query().Do(ctx, func(ctx context.Context, ses query.Session) error {
		items = items[:0]
		rs, err := ses.QueryResultSet(ctx, s.t.yql(`SELECT name, price FROM items ORDER BY name;`))
		if err != nil {
			return err
		}
		defer func() { _ = rs.Close(ctx) }()
		for row, err := range rs.Rows(ctx) {
			if err != nil {
				return err
			}
			var it app.Item
			if err := row.Scan(&it.Name, &it.Price); err != nil {
				return err
			}
			items = append(items, it)
		}
		return nil
	}, query.WithIdempotent())
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	return items, nil
}

// GetItem implements app.Store.
func (s *Store) GetItem(ctx context.Context, name string) (app.Item, error) {
	row, err := s.db.Query().QueryRow(ctx, s.t.yql(`
		DECLARE $name AS Utf8;
		SELECT name, price FROM items WHERE name = $name;`),
		query.WithParameters(ydbsdk.ParamsBuilder().Param("$name").Text(name).Build()),
		query.WithIdempotent())
	if errors.Is(err, query.ErrNoRows) {
		return app.Item{}, app.ErrUnknownItem
	}
	if err != nil {
		return app.Item{}, fmt.Errorf("get item: %w", err)
	}
	var it app.Item
	if err := row.Scan(&it.Name, &it.Price); err != nil {
		return app.Item{}, fmt.Errorf("get item: %w", err)
	}
	return it, nil
}

const orderColumns = `id, user_id, item, price, idempotency_key, status, failure, created_at, updated_at`

// scanner is a result row.
type scanner interface{ Scan(dst ...any) error }

func scanOrder(row scanner) (app.Order, error) {
	var (
		o       app.Order
		status  string
		failure *string
	)
	if err := row.Scan(&o.ID, &o.UserID, &o.Item, &o.Price, &o.IdempotencyKey, &status, &failure, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return app.Order{}, err
	}
	o.Status = app.Status(status)
	if failure != nil {
		o.Failure = *failure
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o, nil
}

// errOrderNotFound: an order id the store does not know.
var errOrderNotFound = errors.New("order not found")

// readOrder reads one order by id within an executor (a transaction or the
// client).
func (s *Store) readOrder(ctx context.Context, ex query.Executor, id string) (app.Order, error) {
	row, err := ex.QueryRow(ctx, s.t.yql(`
		DECLARE $id AS Utf8;
		SELECT `+orderColumns+` FROM orders WHERE id = $id;`),
		query.WithParameters(ydbsdk.ParamsBuilder().Param("$id").Text(id).Build()))
	if errors.Is(err, query.ErrNoRows) {
		return app.Order{}, fmt.Errorf("%w: %s", errOrderNotFound, id)
	}
	if err != nil {
		return app.Order{}, err
	}
	return scanOrder(row)
}

// GetOrder returns one order (used by tests and tools).
func (s *Store) GetOrder(ctx context.Context, id string) (app.Order, error) {
	var o app.Order
	err := s.db.Query().Do(ctx, func(ctx context.Context, ses query.Session) error {
		var err error
		o, err = s.readOrder(ctx, ses, id)
		return err
	}, query.WithIdempotent())
	if err != nil {
		return app.Order{}, fmt.Errorf("load order %s: %w", id, err)
	}
	return o, nil
}

// CreateOrder implements app.Store. The key row is read in the same
// serializable transaction that writes it: of two requests racing with one
// key, the second to commit finds its read invalidated, runs again and
// reads the first one's order.
func (s *Store) CreateOrder(ctx context.Context, o app.Order) (app.Order, bool, error) {
	var (
		got     app.Order
		created bool
	)
	err := s.db.Query().DoTx(ctx, func(ctx context.Context, tx query.TxActor) error {
		created = false
		row, err := tx.QueryRow(ctx, s.t.yql(`
			DECLARE $user_id AS Utf8;
			DECLARE $key AS Utf8;
			SELECT order_id FROM order_keys WHERE user_id = $user_id AND idempotency_key = $key;`),
			query.WithParameters(ydbsdk.ParamsBuilder().
				Param("$user_id").Text(o.UserID).
				Param("$key").Text(o.IdempotencyKey).
				Build()))
		switch {
		case err == nil:
			var id string
			if err := row.Scan(&id); err != nil {
				return err
			}
			got, err = s.readOrder(ctx, tx, id)
			return err
		case !errors.Is(err, query.ErrNoRows):
			return err
		}
		t := s.now()
		got = app.Order{
			ID: o.ID, UserID: o.UserID, Item: o.Item, Price: o.Price,
			IdempotencyKey: o.IdempotencyKey, Status: app.StatusPending, CreatedAt: t, UpdatedAt: t,
		}
		if err := tx.Exec(ctx, s.t.yql(`
			DECLARE $id AS Utf8;
			DECLARE $user_id AS Utf8;
			DECLARE $item AS Utf8;
			DECLARE $price AS Int64;
			DECLARE $key AS Utf8;
			DECLARE $status AS Utf8;
			DECLARE $now AS Timestamp;
			UPSERT INTO order_keys (user_id, idempotency_key, order_id) VALUES ($user_id, $key, $id);
			INSERT INTO orders (id, user_id, item, price, idempotency_key, status, created_at, updated_at)
			VALUES ($id, $user_id, $item, $price, $key, $status, $now, $now);`),
			query.WithParameters(ydbsdk.ParamsBuilder().
				Param("$id").Text(got.ID).
				Param("$user_id").Text(got.UserID).
				Param("$item").Text(got.Item).
				Param("$price").Int64(got.Price).
				Param("$key").Text(got.IdempotencyKey).
				Param("$status").Text(statusPending).
				Param("$now").Timestamp(t).
				Build())); err != nil {
			return err
		}
		created = true
		return nil
	}, query.WithIdempotent(), serializable())
	if err != nil {
		return app.Order{}, false, fmt.Errorf("create order: %w", err)
	}
	return got, created, nil
}

// FailOrder implements app.Store.
func (s *Store) FailOrder(ctx context.Context, id, failure string) (app.Order, error) {
	var o app.Order
	err := s.db.Query().DoTx(ctx, func(ctx context.Context, tx query.TxActor) error {
		var err error
		o, err = s.readOrder(ctx, tx, id)
		if err != nil || o.Status != app.StatusPending {
			return err
		}
		t := s.now()
		if err := tx.Exec(ctx, s.t.yql(`
			DECLARE $id AS Utf8;
			DECLARE $status AS Utf8;
			DECLARE $failure AS Utf8;
			DECLARE $now AS Timestamp;
			UPDATE orders SET status = $status, failure = $failure, updated_at = $now WHERE id = $id;`),
			query.WithParameters(ydbsdk.ParamsBuilder().
				Param("$id").Text(id).
				Param("$status").Text(statusFailed).
				Param("$failure").Text(failure).
				Param("$now").Timestamp(t).
				Build())); err != nil {
			return err
		}
		o.Status, o.Failure, o.UpdatedAt = app.StatusFailed, failure, t
		return nil
	}, query.WithIdempotent(), serializable())
	if err != nil {
		return app.Order{}, fmt.Errorf("fail order %s: %w", id, err)
	}
	return o, nil
}

// CompleteOrder implements app.Store in one serializable transaction.
// Completion also wins over a failure recorded by a concurrent driver, as
// in the PostgreSQL store.
func (s *Store) CompleteOrder(ctx context.Context, id string) (app.Order, error) {
	var o app.Order
	err := s.db.Query().DoTx(ctx, func(ctx context.Context, tx query.TxActor) error {
		var err error
		o, err = s.readOrder(ctx, tx, id)
		if err != nil || o.Status == app.StatusCompleted {
			return err
		}
		t := s.now()
		if err := tx.Exec(ctx, s.t.yql(`
			DECLARE $id AS Utf8;
			DECLARE $status AS Utf8;
			DECLARE $now AS Timestamp;
			UPDATE orders SET status = $status, failure = NULL, updated_at = $now WHERE id = $id;`),
			query.WithParameters(ydbsdk.ParamsBuilder().
				Param("$id").Text(id).
				Param("$status").Text(statusCompleted).
				Param("$now").Timestamp(t).
				Build())); err != nil {
			return err
		}
		o.Status, o.Failure, o.UpdatedAt = app.StatusCompleted, "", t
		return nil
	}, query.WithIdempotent(), serializable())
	if err != nil {
		return app.Order{}, fmt.Errorf("complete order %s: %w", id, err)
	}
	return o, nil
}

// ClaimPending implements app.Store with an optimistic lease. The
// candidates come from a snapshot read of the status index, outside any
// lock (so a busy table of orders changing status does not abort it); then
// one serializable transaction re-reads each candidate by key, keeps those
// still pending and untouched since the cut-off, and bumps their
// updated_at. Two replicas claiming the same order both read it, both
// write it, and the second to commit fails with invalidated locks; its
// retry re-reads the order as touched and leaves it.
func (s *Store) ClaimPending(ctx context.Context, olderThan time.Duration, limit int) ([]app.Order, error) {
	if limit <= 0 {
		return nil, nil
	}
	cutoff := s.now().Add(-olderThan)
	var ids []string
	err := s.db.Query().Do(ctx, func(ctx context.Context, ses query.Session) error {
		ids = ids[:0]
		rs, err := ses.QueryResultSet(ctx, s.t.yql(`
			DECLARE $status AS Utf8;
			DECLARE $cutoff AS Timestamp;
			DECLARE $limit AS Uint64;
			SELECT id, updated_at FROM orders VIEW orders_status_updated
			WHERE status = $status AND updated_at < $cutoff
			ORDER BY updated_at
			LIMIT $limit;`),
			query.WithParameters(ydbsdk.ParamsBuilder().
				Param("$status").Text(statusPending).
				Param("$cutoff").Timestamp(cutoff).
				Param("$limit").Uint64(uint64(limit)).
				Build()),
			query.WithTxControl(query.SnapshotReadOnlyTxControl()))
		if err != nil {
			return err
		}
		defer func() { _ = rs.Close(ctx) }()
		for row, err := range rs.Rows(ctx) {
			if err != nil {
				return err
			}
			var (
				id string
				at time.Time
			)
			if err := row.Scan(&id, &at); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}, query.WithIdempotent())
	if err != nil {
		return nil, fmt.Errorf("find pending orders: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}

	var claimed []app.Order
	err = s.db.Query().DoTx(ctx, func(ctx context.Context, tx query.TxActor) error {
		claimed = claimed[:0]
		rs, err := tx.QueryResultSet(ctx, s.t.yql(`
			DECLARE $ids AS List<Utf8>;
			DECLARE $status AS Utf8;
			DECLARE $cutoff AS Timestamp;
			SELECT `+orderColumns+` FROM orders
			WHERE id IN $ids AND status = $status AND updated_at < $cutoff;`),
			query.WithParameters(ydbsdk.ParamsBuilder().
				Param("$ids").Any(textList(ids)).
				Param("$status").Text(statusPending).
				Param("$cutoff").Timestamp(cutoff).
				Build()))
		if err != nil {
			return err
		}
		for row, err := range rs.Rows(ctx) {
			if err != nil {
				_ = rs.Close(ctx)
				return err
			}
			o, err := scanOrder(row)
			if err != nil {
				_ = rs.Close(ctx)
				return err
			}
			claimed = append(claimed, o)
		}
		if err := rs.Close(ctx); err != nil {
			return err
		}
		if len(claimed) == 0 {
			return nil
		}
		t := s.now()
		keep := make([]string, len(claimed))
		for i := range claimed {
			keep[i] = claimed[i].ID
			claimed[i].UpdatedAt = t
		}
		return tx.Exec(ctx, s.t.yql(`
			DECLARE $ids AS List<Utf8>;
			DECLARE $now AS Timestamp;
			UPDATE orders SET updated_at = $now WHERE id IN $ids;`),
			query.WithParameters(ydbsdk.ParamsBuilder().Param("$ids").Any(textList(keep)).Param("$now").Timestamp(t).Build()))
	}, query.WithIdempotent(), serializable())
	if err != nil {
		return nil, fmt.Errorf("claim pending orders: %w", err)
	}
	// The key read returns them in id order; drive the oldest first.
	slices.SortFunc(claimed, func(a, b app.Order) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return claimed, nil
}

// textList is a List<Utf8> parameter value. It must not be empty: an
// empty list has no item type to match its declaration.
func textList(items []string) types.Value {
	vs := make([]types.Value, len(items))
	for i, it := range items {
		vs[i] = types.TextValue(it)
	}
	return types.ListValue(vs...)
}

// Ping checks that YDB answers (the readiness check).
func Ping(ctx context.Context, db *ydbsdk.Driver) error {
	return db.Query().Exec(ctx, `SELECT 1;`, query.WithIdempotent())
}
