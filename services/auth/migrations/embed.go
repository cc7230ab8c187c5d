// Package migrations holds the auth service's schema, applied at start-up
// by goose.
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS
