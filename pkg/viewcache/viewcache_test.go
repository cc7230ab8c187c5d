package viewcache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/merchshop/merchshop/pkg/testenv"
	"github.com/merchshop/merchshop/pkg/viewcache"
)

func client(t *testing.T) *goredis.Client {
	t.Helper()
	rdb := viewcache.NewClient(testenv.Need(t, "REDIS_ADDR"))
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func newUser(t *testing.T) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	u := "test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		rdb := viewcache.NewClient(testenv.Need(t, "REDIS_ADDR"))
		defer func() { _ = rdb.Close() }()
		_ = rdb.Del(context.Background(), viewcache.Key(u)).Err()
	})
	return u
}

func get(t *testing.T, r *viewcache.Reader, user string) (string, viewcache.Result, viewcache.Stamp) {
	t.Helper()
	v, res, st, err := r.Get(context.Background(), user)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	return string(v), res, st
}

func put(t *testing.T, r *viewcache.Reader, user string, st viewcache.Stamp, view string) bool {
	t.Helper()
	ok, err := r.Put(context.Background(), user, st, []byte(view))
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return ok
}

func TestMissPutHit(t *testing.T) {
	rdb := client(t)
	r := viewcache.NewReader(rdb, time.Minute)
	u := newUser(t)
	if _, res, _ := get(t, r, u); res != viewcache.Miss {
		t.Fatalf("new user: %v, want Miss", res)
	}
	_, _, st := get(t, r, u)
	if !st.Cacheable() || !put(t, r, u, st, "view-1") {
		t.Fatal("put after a clean get was not stored")
	}
	v, res, _ := get(t, r, u)
	if res != viewcache.Hit || v != "view-1" {
		t.Fatalf("get = %q %v, want the stored view", v, res)
	}
}

func TestWriteInvalidatesAndRefusesOlderStamps(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	r := viewcache.NewReader(rdb, time.Minute)
	w := viewcache.NewWriter(rdb, viewcache.WriterConfig{})
	u := newUser(t)
	_, _, st := get(t, r, u)
	put(t, r, u, st, "before")

	_, _, stale := get(t, r, u) // a reader that will read the data before the commit
	c, err := w.Begin(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, res, st := get(t, r, u); res != viewcache.Busy || st.Cacheable() {
		t.Fatalf("during a write: %v cacheable=%v, want Busy and not cacheable", res, st.Cacheable())
	}
	if put(t, r, u, stale, "read before the commit") {
		t.Fatal("a view stamped before Begin was stored during the write")
	}
	if err := w.End(ctx, c); err != nil {
		t.Fatal(err)
	}
	if put(t, r, u, stale, "read before the commit") {
		t.Fatal("a view stamped before Begin was stored after End")
	}
	if _, res, _ := get(t, r, u); res != viewcache.Miss {
		t.Fatalf("after the write: %v, want Miss", res)
	}
	_, _, st = get(t, r, u)
	if !put(t, r, u, st, "after") {
		t.Fatal("a fresh view was not stored after the write")
	}
	if v, res, _ := get(t, r, u); res != viewcache.Hit || v != "after" {
		t.Fatalf("get = %q %v", v, res)
	}
}

func TestTwoUsersOneChange(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	r := viewcache.NewReader(rdb, time.Minute)
	w := viewcache.NewWriter(rdb, viewcache.WriterConfig{})
	a, b := newUser(t), newUser(t)
	for _, u := range []string{a, b} {
		_, _, st := get(t, r, u)
		put(t, r, u, st, "old")
	}
	c, err := w.Begin(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{a, b} {
		if _, res, _ := get(t, r, u); res != viewcache.Busy {
			t.Fatalf("%s during the write: %v, want Busy", u, res)
		}
	}
	if err := w.End(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{a, b} {
		if _, res, _ := get(t, r, u); res != viewcache.Miss {
			t.Fatalf("%s after the write: %v, want Miss", u, res)
		}
	}
}

// A writer whose End never comes (killed, or cut off from Redis after its
// commit) keeps readers off the view until its lease runs out, and never
// commits after CommitBy.
func TestLeaseOutlivesALostEnd(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	r := viewcache.NewReader(rdb, time.Minute)
	lease := 600 * time.Millisecond
	w := viewcache.NewWriter(rdb, viewcache.WriterConfig{Lease: lease, CommitMargin: 200 * time.Millisecond})
	u := newUser(t)
	_, _, st := get(t, r, u)
	put(t, r, u, st, "old")
	start := time.Now()
	c, err := w.Begin(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if c.CommitBy().After(time.Now().Add(lease - 200*time.Millisecond)) {
		t.Fatalf("commit by %v after start, want at most lease - margin", c.CommitBy().Sub(start))
	}
	// No End. Until the lease runs out the view is Busy.
	for {
		_, res, _ := get(t, r, u)
		if time.Since(start) < lease-100*time.Millisecond && res != viewcache.Busy {
			t.Fatalf("%v after Begin: %v, want Busy while the lease lives", time.Since(start), res)
		}
		if res == viewcache.Miss {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the lease never ran out")
		}
	}
	_, _, st = get(t, r, u)
	if !put(t, r, u, st, "new") {
		t.Fatal("no view stored once the lease ran out")
	}
}

// The hash lost mid-write (Redis restarted empty, the key evicted): the
// write's End still makes a view read before its commit stop matching.
func TestHashLostMidWrite(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	r := viewcache.NewReader(rdb, time.Minute)
	w := viewcache.NewWriter(rdb, viewcache.WriterConfig{})
	u := newUser(t)
	c, err := w.Begin(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, viewcache.Key(u)).Err(); err != nil {
		t.Fatal(err)
	}
	_, res, st := get(t, r, u)
	if res != viewcache.Miss {
		t.Fatalf("after the loss: %v", res)
	}
	put(t, r, u, st, "read before the commit")
	if err := w.End(ctx, c); err != nil {
		t.Fatal(err)
	}
	if v, res, _ := get(t, r, u); res == viewcache.Hit {
		t.Fatalf("the view read before the commit is served after it: %q", v)
	}
}

func TestBeginWithoutRedisRefuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	rdb := viewcache.NewClient(addr)
	defer func() { _ = rdb.Close() }()
	w := viewcache.NewWriter(rdb, viewcache.WriterConfig{})
	_, err = w.Begin(context.Background(), "someone")
	if !errors.Is(err, viewcache.ErrUnavailable) {
		t.Fatalf("Begin without Redis: %v, want ErrUnavailable", err)
	}
}

// proxy forwards TCP to target until cut.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				_ = c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				_ = c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); p.partition() })
	return p
}

// partition drops every connection and refuses new ones.
func (p *proxy) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// The system-level property, with the writer partitioned from Redis in the
// middle of its writes while readers still reach it: no reader ever serves
// a view older than a write that was acknowledged before its Get. The
// "database" is a counter per user; a writer bumps it inside Begin/End as
// a service commits inside them, and acknowledges after End.
func TestNoStaleViewUnderConcurrencyAndPartition(t *testing.T) {
	ctx := context.Background()
	addr := testenv.Need(t, "REDIS_ADDR")
	readerRDB := client(t)
	px := newProxy(t, addr)
	writerRDB := viewcache.NewClient(px.ln.Addr().String())
	defer func() { _ = writerRDB.Close() }()
	r := viewcache.NewReader(readerRDB, time.Minute)
	w := viewcache.NewWriter(writerRDB, viewcache.WriterConfig{Lease: 2 * time.Second, CommitMargin: 500 * time.Millisecond})

	users := []string{newUser(t), newUser(t), newUser(t)}
	var (
		mu    sync.Mutex
		db    = map[string]int{}
		acked = map[string]*atomic.Int64{}
	)
	for _, u := range users {
		acked[u] = &atomic.Int64{}
	}
	var writes, refused, hits, stale atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				u := users[(i+n)%len(users)]
				c, err := w.Begin(ctx, u)
				if err != nil {
					_ = w.End(ctx, c)
					refused.Add(1)
					continue // nothing written: the service answers Unavailable
				}
				if time.Now().After(c.CommitBy()) {
					_ = w.End(ctx, c)
					continue
				}
				mu.Lock()
				db[u]++
				v := db[u]
				mu.Unlock()
				_ = w.End(ctx, c) // may fail after the partition: the lease covers it
				for {
					old := acked[u].Load()
					if int64(v) <= old || acked[u].CompareAndSwap(old, int64(v)) {
						break
					}
				}
				writes.Add(1)
			}
		}(i)
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				u := users[(i+n)%len(users)]
				floor := acked[u].Load()
				v, res, st, err := r.Get(ctx, u)
				if err != nil {
					t.Errorf("reader get: %v", err)
					return
				}
				if res == viewcache.Hit {
					hits.Add(1)
					got, _ := strconv.Atoi(string(v))
					if int64(got) < floor {
						stale.Add(1)
					}
					continue
				}
				mu.Lock()
				cur := db[u]
				mu.Unlock()
				if _, err := r.Put(ctx, u, st, []byte(strconv.Itoa(cur))); err != nil {
					t.Errorf("reader put: %v", err)
					return
				}
			}
		}(i)
	}
	waitFor(t, 10*time.Second, func() bool { return writes.Load() > 300 && hits.Load() > 300 })
	px.partition()
	waitFor(t, 10*time.Second, func() bool { return refused.Load() > 10 })
	// Let the leases the partition left behind run out, and readers go on.
	before := hits.Load()
	waitFor(t, 15*time.Second, func() bool { return hits.Load() > before+300 })
	close(stop)
	wg.Wait()
	if s := stale.Load(); s != 0 {
		t.Fatalf("%d stale views served (of %d hits, %d writes)", s, hits.Load(), writes.Load())
	}
	t.Logf("%d writes, %d refused after the partition, %d hits, no stale view", writes.Load(), refused.Load(), hits.Load())
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The writer is partitioned from Redis between its commit and its End,
// while a reader that read the data before the commit still reaches Redis:
// the reader's view is never stored, and nothing old is served.
func TestPartitionedWriterLeavesNoStaleView(t *testing.T) {
	ctx := context.Background()
	readerRDB := client(t)
	px := newProxy(t, testenv.Need(t, "REDIS_ADDR"))
	writerRDB := viewcache.NewClient(px.ln.Addr().String())
	defer func() { _ = writerRDB.Close() }()
	r := viewcache.NewReader(readerRDB, time.Minute)
	w := viewcache.NewWriter(writerRDB, viewcache.WriterConfig{Lease: 800 * time.Millisecond, CommitMargin: 300 * time.Millisecond})
	u := newUser(t)
	db := "1"
	_, _, st := get(t, r, u)
	put(t, r, u, st, db)

	c, err := w.Begin(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	_, res, st := get(t, r, u) // the reader looks, then reads the data
	if res == viewcache.Hit {
		t.Fatal("hit during a write")
	}
	read := db
	db = "2" // the commit
	px.partition()
	if err := w.End(ctx, c); err == nil {
		t.Fatal("End through a partition succeeded")
	}
	put(t, r, u, st, read)
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, res, st := get(t, r, u)
		if res == viewcache.Hit {
			if v != db {
				t.Fatalf("served %q after the write of %q was committed", v, db)
			}
			return
		}
		put(t, r, u, st, db)
		if time.Now().After(deadline) {
			t.Fatal("the view never became cacheable again")
		}
	}
}
