// Package migrations holds the merch service's PostgreSQL schema and the
// catalog seed, applied at start-up by goose.
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS
