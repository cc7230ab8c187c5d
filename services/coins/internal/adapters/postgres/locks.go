package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// accountLocks serialises, inside this process, the movements that touch
// the same accounts before they reach PostgreSQL.
//
// Why: a movement that waits for a row lock in PostgreSQL waits on a pooled
// connection and a server backend. On a hot account (one payer with many
// requests in flight) every waiter would hold one, and the pool would run
// dry for everybody else. Queueing here first keeps the waiters off the
// pool: a movement takes a connection once no other movement of this
// process holds its accounts. The row locks stay the guarantee, between
// replicas and for a recipient known only by name.
//
// The stripes are channels so that waiting honours the context; accounts
// are mapped to stripes by their id, and stripes are taken in index order
// so that two movements cannot deadlock.
type accountLocks struct {
	stripes []chan struct{}
}

func newAccountLocks(n int) *accountLocks {
	l := &accountLocks{stripes: make([]chan struct{}, n)}
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	return l
}

// lock takes the stripes of ids and returns the function that releases
// them; it fails only when ctx ends first.
func (l *accountLocks) lock(ctx context.Context, ids ...uuid.UUID) (func(), error) {
	idx := make([]int, 0, len(ids))
	for _, id := range ids {
		idx = append(idx, int(binary.BigEndian.Uint64(id[8:])%uint64(len(l.stripes))))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	release := func(n int) {
		for _, i := range idx[:n] {
			<-l.stripes[i]
		}
	}
	for n, i := range idx {
		select {
		case l.stripes[i] <- struct{}{}:
		case <-ctx.Done():
			release(n)
			return nil, fmt.Errorf("wait for account lock: %w", ctx.Err())
		}
	}
	return func() { release(len(idx)) }, nil
}
