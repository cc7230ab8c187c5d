// Package testenv tells integration tests where the real servers started by
// scripts/infra are. A test whose server is not configured skips, saying so,
// unless MERCH_REQUIRE_INFRA=1 (set by `make test` and CI), where it fails.
package testenv

import (
	"os"
	"testing"
)

// Need returns the value of the environment variable key, or skips (fails
// under MERCH_REQUIRE_INFRA=1) when it is unset.
func Need(t testing.TB, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v != "" {
		return v
	}
	msg := key + " is not set: start the servers with scripts/infra/up.sh and source .state/env (make test does both)"
	if os.Getenv("MERCH_REQUIRE_INFRA") == "1" {
		t.Fatal(msg)
	}
	t.Skip("integration test skipped: " + msg)
	return ""
}
