package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

const (
	welcomeMinor = 1000 * 100 // every user's 1000 coins, in minor units
	minorPerCoin = 100
	maxDetails   = 8
)

// invariant is one checked guarantee and what broke it.
type invariant struct {
	name     string
	checked  int // how many facts were checked
	failures int
	details  []string
}

func (inv *invariant) ok() bool { return inv.failures == 0 }

func (inv *invariant) fail(format string, args ...any) {
	inv.failures++
	if len(inv.details) < maxDetails {
		inv.details = append(inv.details, fmt.Sprintf(format, args...))
	}
}

// checkResult is the verdict after one fault.
type checkResult struct {
	invariants []*invariant
	drain      time.Duration // until ready with nothing pending
	reconcile  time.Duration // until ClickHouse reconciled
}

func (c checkResult) ok() bool {
	for _, inv := range c.invariants {
		if !inv.ok() {
			return false
		}
	}
	return len(c.invariants) > 0
}

func (c checkResult) failed() []string {
	var out []string
	for _, inv := range c.invariants {
		if !inv.ok() {
			out = append(out, inv.name)
		}
	}
	return out
}

// check drains the system (the workload must be paused) and checks every
// invariant over everything the run did so far.
func (s *suite) check(ctx context.Context) checkResult {
	start := time.Now()
	var res checkResult
	drain := &invariant{name: "drained: every service ready, no purchase of the run left pending"}
	res.invariants = append(res.invariants, drain)
	if err := s.waitReady(ctx); err != nil {
		drain.fail("services not ready: %v", err)
	}
	err := waitFor(ctx, s.cfg.deadline, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, err := s.db.pendingOrders(ctx, s.ids)
		return err == nil && n == 0, err
	})
	if err != nil {
		drain.fail("pending orders remain: %v", err)
	}
	drain.checked = 1
	res.drain = time.Since(start)
	quiet := time.Now()

	snap, err := s.db.read(ctx, s.ids)
	if err != nil {
		inv := &invariant{name: "read the databases"}
		inv.fail("%v", err)
		res.invariants = append(res.invariants, inv)
		return res
	}
	recs := s.rec.all()
	res.invariants = append(res.invariants, s.checkSnapshot(snap, recs, s.fetchInfos(ctx))...)
	rec, took := s.checkReconcile(ctx, quiet)
	res.reconcile = took
	res.invariants = append(res.invariants, rec)
	return res
}

// checkSnapshot checks the databases' snapshot and the users' /api/info
// against each other and against the answers the run got.
func (s *suite) checkSnapshot(snap *snapshot, recs []record, infos map[string]info) []*invariant {
	return []*invariant{
		s.checkConservation(snap),
		s.checkLedger(snap),
		s.checkPurchases(snap, recs),
		s.checkGoods(snap),
		s.checkTransfers(snap, recs, infos),
		s.checkRefused(snap, recs),
	}
}

// checkConservation: the balances of the run's users sum to 1000 coins
// each minus the price of every item granted to them (transfers stay among
// them; a refunded charge nets to zero).
func (s *suite) checkConservation(snap *snapshot) *invariant {
	inv := &invariant{name: "sum of balances = 1000 x users - price of granted items"}
	if len(snap.accounts) != len(s.all) {
		inv.fail("%d of the run's %d users have an account", len(snap.accounts), len(s.all))
	}
	var sum, spent int64
	for _, b := range snap.balances {
		sum += b
	}
	for _, g := range snap.grants {
		p, ok := snap.prices[g.item]
		if !ok {
			inv.fail("grant %s of unknown item %q", g.orderID, g.item)
		}
		spent += p * minorPerCoin
	}
	want := int64(len(s.all))*welcomeMinor - spent
	if sum != want {
		inv.fail("balances sum to %s coins, want %s = 1000 x %d users - %s coins for %d granted items",
			coins(sum), coins(want), len(s.all), coins(spent), len(snap.grants))
	}
	for _, u := range s.all {
		g, ok := snap.txs[openKey(u.id)]
		if !ok || g.kind != "grant" || g.to != u.id || g.amount != welcomeMinor {
			inv.fail("%s: no welcome grant of 1000 coins in the ledger", u.name)
		}
	}
	inv.checked = len(s.all)
	return inv
}

// checkLedger: no balance is negative and every balance equals the sum of
// its ledger entries (every account in the system); every transaction of
// the run has the entries it should.
func (s *suite) checkLedger(snap *snapshot) *invariant {
	inv := &invariant{name: "no negative balance; every balance = sum of its ledger entries"}
	for _, l := range snap.ledger {
		inv.fail("%s", l)
	}
	for _, b := range snap.badTx {
		inv.fail("%s", b)
	}
	inv.checked = len(snap.txs)
	return inv
}

// checkPurchases: every purchase answered 200 has its completed order, the
// item granted once for that order, and one charge of its price.
func (s *suite) checkPurchases(snap *snapshot, recs []record) *invariant {
	inv := &invariant{name: "every purchase answered 200 is granted once and paid once"}
	for _, r := range recs {
		if r.kind != kindBuy || !r.ok() {
			continue
		}
		inv.checked++
		u := s.users[r.from]
		s.verifyPaidOrder(inv, snap, u, r.item, r.key)
	}
	for _, sc := range s.scenarioOrders {
		inv.checked++
		s.verifyPaidOrder(inv, snap, sc.u, sc.item, sc.key)
	}
	return inv
}

func (s *suite) verifyPaidOrder(inv *invariant, snap *snapshot, u *user, item, key string) {
	o, ok := snap.byKey[orderKey(u.id, key)]
	if !ok {
		inv.fail("%s bought %s (key %s): answered 200 but there is no order", u.name, item, key)
		return
	}
	if o.status != "completed" || o.item != item {
		inv.fail("order %s (%s, %s): status %s, item %s", o.id, u.name, key, o.status, o.item)
	}
	if g, ok := snap.grants[o.id]; !ok || g.userID != u.id || g.item != item {
		inv.fail("order %s (%s %s): not granted to the buyer", o.id, u.name, item)
	}
	if c, ok := snap.txs[chargeKey(o.id)]; !ok || c.kind != "purchase" || c.from != u.id || c.amount != o.price*minorPerCoin {
		inv.fail("order %s (%s %s): no charge of %d coins", o.id, u.name, item, o.price)
	}
	if _, ok := snap.txs[refundKey(o.id)]; ok {
		inv.fail("order %s (%s %s): completed and refunded", o.id, u.name, item)
	}
}

// checkGoods: no item exists without its payment. Every grant belongs to a
// completed order with one charge and no refund; inventories equal the
// grants; a failed order granted nothing and kept no money; every charge
// belongs to an order.
func (s *suite) checkGoods(snap *snapshot) *invariant {
	inv := &invariant{name: "no item without its payment; inventory = grants"}
	counts := map[string]map[string]int64{}
	for _, g := range snap.grants {
		inv.checked++
		if counts[g.userID] == nil {
			counts[g.userID] = map[string]int64{}
		}
		counts[g.userID][g.item]++
		o, ok := snap.orders[g.orderID]
		if !ok {
			inv.fail("grant %s (%s to %s) has no order", g.orderID, g.item, s.nameOf(g.userID))
			continue
		}
		if o.status != "completed" || o.userID != g.userID || o.item != g.item {
			inv.fail("grant %s (%s to %s): order is %s for %s %s", g.orderID, g.item, s.nameOf(g.userID), o.status, s.nameOf(o.userID), o.item)
		}
		if c, ok := snap.txs[chargeKey(o.id)]; !ok || c.from != o.userID || c.amount != o.price*minorPerCoin {
			inv.fail("grant %s (%s to %s) was not paid", g.orderID, g.item, s.nameOf(g.userID))
		}
		if _, ok := snap.txs[refundKey(o.id)]; ok {
			inv.fail("grant %s (%s to %s) was refunded", g.orderID, g.item, s.nameOf(g.userID))
		}
	}
	for _, u := range s.all {
		have, want := snap.invent[u.id], counts[u.id]
		for item, q := range have {
			if want[item] != q {
				inv.fail("%s has %d x %s in the inventory and %d grants", u.name, q, item, want[item])
			}
		}
		for item, q := range want {
			if have[item] != q {
				inv.fail("%s has %d grants of %s and %d in the inventory", u.name, q, item, have[item])
			}
		}
	}
	for _, o := range snap.orders {
		inv.checked++
		_, granted := snap.grants[o.id]
		charge, charged := snap.txs[chargeKey(o.id)]
		refund, refunded := snap.txs[refundKey(o.id)]
		switch o.status {
		case "completed":
			if !granted {
				inv.fail("order %s (%s %s) completed without a grant", o.id, s.nameOf(o.userID), o.item)
			}
		case "failed":
			if granted {
				inv.fail("order %s (%s %s) failed (%s) but was granted", o.id, s.nameOf(o.userID), o.item, o.failure)
			}
			if charged && (!refunded || refund.amount != charge.amount || refund.to != o.userID) {
				inv.fail("order %s (%s %s) failed (%s) but kept its charge", o.id, s.nameOf(o.userID), o.item, o.failure)
			}
		default:
			inv.fail("order %s (%s %s) is %s after the drain", o.id, s.nameOf(o.userID), o.item, o.status)
		}
	}
	for key, x := range snap.txs {
		if x.kind != "purchase" {
			continue
		}
		id, ok := strings.CutPrefix(key, "charge:order:")
		if _, known := snap.orders[id]; !ok || !known {
			inv.fail("charge %s (%s coins from %s) belongs to no order", key, coins(x.amount), s.nameOf(x.from))
		}
	}
	return inv
}

// checkTransfers: every transfer answered 200 is in the ledger once and in
// both users' coinHistory (GET /api/info); each user's grouped history
// equals the ledger's sums and covers the 200-answered transfers; the
// balance and inventory of /api/info equal the databases'; every transfer
// in the ledger is one the run asked for.
func (s *suite) checkTransfers(snap *snapshot, recs []record, infos map[string]info) *invariant {
	inv := &invariant{name: "every transfer answered 200 is in the ledger and in both users' coinHistory"}
	answered := map[[2]string]int64{} // (from id, to id) -> coins answered 200
	asked := map[string]record{}
	for _, r := range recs {
		if r.kind != kindSend {
			continue
		}
		from, to := s.users[r.from], s.users[r.to]
		asked[transferKey(from.id, r.key)] = r
		if !r.ok() {
			continue
		}
		inv.checked++
		answered[[2]string{from.id, to.id}] += int64(r.amount)
		x, ok := snap.txs[transferKey(from.id, r.key)]
		if !ok || x.kind != "transfer" || x.from != from.id || x.to != to.id || x.amount != int64(r.amount)*minorPerCoin {
			inv.fail("%s -> %s %d coins (key %s): answered 200, not in the ledger as such", from.name, to.name, r.amount, r.key)
		}
	}
	for key, x := range snap.txs {
		if x.kind != "transfer" {
			continue
		}
		if r, ok := asked[key]; !ok {
			inv.fail("transfer %s (%s -> %s) was never asked for", key, s.nameOf(x.from), s.nameOf(x.to))
		} else if r.client() {
			inv.fail("transfer %s was answered %d but moved money", key, r.code)
		}
	}

	// /api/info of every user of the run.
	for _, u := range s.all {
		in, ok := infos[u.id]
		if !ok {
			inv.fail("%s: GET /api/info failed", u.name)
			continue
		}
		if in.Coins*minorPerCoin != snap.balances[u.id] {
			inv.fail("%s: /api/info says %d coins, the ledger %s", u.name, in.Coins, coins(snap.balances[u.id]))
		}
		items := map[string]int64{}
		for _, it := range in.Inventory {
			items[it.Type] = it.Quantity
		}
		if !equalMaps(items, snap.invent[u.id]) {
			inv.fail("%s: /api/info inventory %v, the database %v", u.name, items, snap.invent[u.id])
		}
		sent := map[string]int64{}
		for _, e := range in.CoinHistory.Sent {
			sent[e.ToUser] += e.Amount
		}
		received := map[string]int64{}
		for _, e := range in.CoinHistory.Received {
			received[e.FromUser] += e.Amount
		}
		wantSent, wantReceived := map[string]int64{}, map[string]int64{}
		for pair, minor := range snap.history {
			if pair[0] == u.id {
				wantSent[s.nameOf(pair[1])] += minor / minorPerCoin
			}
			if pair[1] == u.id {
				wantReceived[s.nameOf(pair[0])] += minor / minorPerCoin
			}
		}
		if !equalMaps(sent, wantSent) {
			inv.fail("%s: coinHistory.sent %v, the ledger %v", u.name, sent, wantSent)
		}
		if !equalMaps(received, wantReceived) {
			inv.fail("%s: coinHistory.received %v, the ledger %v", u.name, received, wantReceived)
		}
		for pair, c := range answered {
			if pair[0] == u.id && sent[s.nameOf(pair[1])] < c {
				inv.fail("%s: sent %d coins to %s in 200-answered transfers, coinHistory.sent shows %d", u.name, c, s.nameOf(pair[1]), sent[s.nameOf(pair[1])])
			}
			if pair[1] == u.id && received[s.nameOf(pair[0])] < c {
				inv.fail("%s: received %d coins from %s in 200-answered transfers, coinHistory.received shows %d", u.name, c, s.nameOf(pair[0]), received[s.nameOf(pair[0])])
			}
		}
	}
	return inv
}

// checkRefused: nothing answered 4xx moved money: a refused transfer left
// no transaction under its key, a refused purchase no order, or a failed
// one without a grant and with its charge (if any) refunded.
func (s *suite) checkRefused(snap *snapshot, recs []record) *invariant {
	inv := &invariant{name: "nothing answered 4xx moved money"}
	for _, r := range recs {
		if !r.client() {
			continue
		}
		u := s.users[r.from]
		switch r.kind {
		case kindSend:
			inv.checked++
			if x, ok := snap.txs[transferKey(u.id, r.key)]; ok {
				inv.fail("%s -> %s %d coins answered %d, but transaction %s moved %s coins", u.name, s.users[r.to].name, r.amount, r.code, x.id, coins(x.amount))
			}
		case kindBuy:
			inv.checked++
			o, ok := snap.byKey[orderKey(u.id, r.key)]
			if !ok {
				continue
			}
			if o.status != "failed" {
				inv.fail("%s bought %s answered %d, but order %s is %s", u.name, r.item, r.code, o.id, o.status)
			}
			if _, ok := snap.grants[o.id]; ok {
				inv.fail("%s bought %s answered %d, but order %s was granted", u.name, r.item, r.code, o.id)
			}
			if _, charged := snap.txs[chargeKey(o.id)]; charged {
				if _, refunded := snap.txs[refundKey(o.id)]; !refunded {
					inv.fail("%s bought %s answered %d, but order %s was charged", u.name, r.item, r.code, o.id)
				}
			}
		}
	}
	return inv
}

// checkReconcile runs the reconcile tool (services/info/cmd/reconcile,
// built by scripts/services.sh) until it agrees, within the deadline: the
// read model trails the ledger.
func (s *suite) checkReconcile(ctx context.Context, quiet time.Time) (*invariant, time.Duration) {
	inv := &invariant{name: "ClickHouse history reconciles with the ledger (count and sum per user)"}
	bin := filepath.Join(s.cfg.state, "bin", "reconcile")
	const settle = time.Second
	var out []byte
	err := waitFor(ctx, s.cfg.deadline, 500*time.Millisecond, func(ctx context.Context) (bool, error) {
		// Compare only once everything the run wrote is older than -settle.
		if time.Since(quiet) < settle+100*time.Millisecond {
			return false, nil
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, bin, "-settle", settle.String(), "-timeout", "25s")
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		out = buf.Bytes()
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 {
			return false, nil // differences: the read model may still be catching up
		}
		return err == nil, err
	})
	took := time.Since(quiet)
	inv.checked = 1
	if err != nil {
		inv.fail("reconcile did not agree: %v", err)
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			inv.fail("%s", l)
		}
	}
	return inv, took
}

// fetchInfos gets GET /api/info of every user of the run.
func (s *suite) fetchInfos(ctx context.Context) map[string]info {
	out := map[string]info{}
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, u := range s.all {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var in info
			a, _, _ := workloadRetries.do(ctx, func() answer {
				var a answer
				in, a = s.c.info(ctx, u)
				return a
			})
			if a.code == http.StatusOK {
				mu.Lock()
				out[u.id] = in
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

func (s *suite) nameOf(id string) string {
	if u, ok := s.byID[id]; ok {
		return u.name
	}
	return id
}

func equalMaps(a, b map[string]int64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// coins formats minor units as coins.
func coins(minor int64) string {
	if minor%minorPerCoin == 0 {
		return fmt.Sprintf("%d", minor/minorPerCoin)
	}
	return fmt.Sprintf("%.2f", float64(minor)/minorPerCoin)
}
