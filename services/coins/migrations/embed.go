// Package migrations holds the coins database schema as goose migrations,
// embedded so that the binary applies them at start-up.
package migrations

import "embed"

// FS holds the *.sql migrations at its root (pass dir ".").
//
//go:embed *.sql
var FS embed.FS
