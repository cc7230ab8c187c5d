package postgres

import (
	"fmt"

	"github.com/pressly/goose/v3/lock"
)

func newLocker() (lock.SessionLocker, error) {
	// Probe every second (goose's default is every 5 s) for up to 5 minutes:
	// replicas and test packages migrating at once wait less.
	l, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return l, nil
}
