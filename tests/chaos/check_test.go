package main

import (
	"strings"
	"testing"
	"time"
)

// fixture: alice bought a pen (200), sent bob 5 coins (200); bob's transfer
// of 1,000,000 coins and his purchase of an unknown item were refused (400).
func fixture() (*suite, *snapshot, []record, map[string]info) {
	alice := &user{idx: 0, name: "alice", id: "A"}
	bob := &user{idx: 1, name: "bob", id: "B"}
	s := &suite{users: []*user{alice, bob}, all: []*user{alice, bob}, byID: map[string]*user{"A": alice, "B": bob}}
	now := time.Now()
	recs := []record{
		{kind: kindBuy, from: 0, to: -1, item: "pen", key: "k1", code: 200, start: now, end: now},
		{kind: kindSend, from: 0, to: 1, amount: 5, key: "k2", code: 200, start: now, end: now},
		{kind: kindSend, from: 1, to: 0, amount: 1_000_000, key: "k3", code: 400, start: now, end: now},
		{kind: kindBuy, from: 1, to: -1, item: "no-such-item", key: "k4", code: 400, start: now, end: now},
		{kind: kindInfo, from: 1, to: -1, code: 500, start: now, end: now},
	}
	o1 := order{id: "o1", userID: "A", item: "pen", price: 10, key: orderKey("A", "k1"), status: "completed"}
	snap := &snapshot{
		balances: map[string]int64{"A": 98500, "B": 100500},
		accounts: map[string]string{"A": "alice", "B": "bob"},
		txs: map[string]tx{
			openKey("A"):           {id: "t1", kind: "grant", to: "A", amount: 100000},
			openKey("B"):           {id: "t2", kind: "grant", to: "B", amount: 100000},
			chargeKey("o1"):        {id: "t3", kind: "purchase", from: "A", amount: 1000},
			transferKey("A", "k2"): {id: "t4", kind: "transfer", from: "A", to: "B", amount: 500},
		},
		history: map[[2]string]int64{{"A", "B"}: 500},
		grants:  map[string]grant{"o1": {orderID: "o1", userID: "A", item: "pen"}},
		invent:  map[string]map[string]int64{"A": {"pen": 1}},
		orders:  map[string]order{"o1": o1},
		byKey:   map[string]order{o1.key: o1},
		prices:  map[string]int64{"pen": 10, "cup": 20},
	}
	var a, b info
	a.Coins = 985
	a.Inventory = append(a.Inventory, struct {
		Type     string `json:"type"`
		Quantity int64  `json:"quantity"`
	}{"pen", 1})
	a.CoinHistory.Sent = append(a.CoinHistory.Sent, struct {
		ToUser string `json:"toUser"`
		Amount int64  `json:"amount"`
	}{"bob", 5})
	b.Coins = 1005
	b.CoinHistory.Received = append(b.CoinHistory.Received, struct {
		FromUser string `json:"fromUser"`
		Amount   int64  `json:"amount"`
	}{"alice", 5})
	return s, snap, recs, map[string]info{"A": a, "B": b}
}

func failedNames(invs []*invariant) []string {
	var out []string
	for _, inv := range invs {
		if !inv.ok() {
			out = append(out, inv.name+": "+strings.Join(inv.details, "; "))
		}
	}
	return out
}

func TestCheckAcceptsAConsistentRun(t *testing.T) {
	s, snap, recs, infos := fixture()
	if f := failedNames(s.checkSnapshot(snap, recs, infos)); len(f) > 0 {
		t.Fatalf("a consistent run failed:\n%s", strings.Join(f, "\n"))
	}
}

// Every invariant must be able to fail: each breakage is caught by the
// invariant named.
func TestCheckCatchesBrokenGuarantees(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(snap *snapshot, recs []record, infos map[string]info)
		want   string
	}{
		{"coins created", func(snap *snapshot, _ []record, _ map[string]info) {
			snap.balances["B"] += 100
		}, "sum of balances"},
		{"balance off its ledger", func(snap *snapshot, _ []record, _ map[string]info) {
			snap.ledger = append(snap.ledger, "bob: balance 100600, entries sum 100500")
		}, "no negative balance"},
		{"item without payment", func(snap *snapshot, _ []record, _ map[string]info) {
			delete(snap.txs, chargeKey("o1"))
			snap.balances["A"] += 1000
		}, "no item without its payment"},
		{"granted twice", func(snap *snapshot, _ []record, _ map[string]info) {
			snap.grants["o2"] = grant{orderID: "o2", userID: "A", item: "pen"}
			snap.invent["A"]["pen"] = 2
		}, "no item without its payment"},
		{"inventory off its grants", func(snap *snapshot, _ []record, _ map[string]info) {
			snap.invent["A"]["pen"] = 2
		}, "inventory = grants"},
		{"purchase answered 200 not granted", func(snap *snapshot, _ []record, _ map[string]info) {
			delete(snap.grants, "o1")
			delete(snap.invent, "A")
			snap.balances["A"] += 1000
			delete(snap.txs, chargeKey("o1"))
		}, "every purchase answered 200"},
		{"order left pending", func(snap *snapshot, _ []record, _ map[string]info) {
			o := snap.orders["o1"]
			o.status = "pending"
			snap.orders["o1"] = o
		}, "no item without its payment"},
		{"transfer answered 200 missing", func(snap *snapshot, _ []record, infos map[string]info) {
			delete(snap.txs, transferKey("A", "k2"))
			delete(snap.history, [2]string{"A", "B"})
			snap.balances["A"] += 500
			snap.balances["B"] -= 500
		}, "every transfer answered 200"},
		{"coinHistory misses a transfer", func(_ *snapshot, _ []record, infos map[string]info) {
			b := infos["B"]
			b.CoinHistory.Received = nil
			infos["B"] = b
		}, "every transfer answered 200"},
		{"refused transfer moved money", func(snap *snapshot, _ []record, _ map[string]info) {
			snap.txs[transferKey("B", "k3")] = tx{id: "t9", kind: "transfer", from: "B", to: "A", amount: 100}
		}, "nothing answered 4xx moved money"},
		{"refused purchase kept its charge", func(snap *snapshot, recs []record, _ map[string]info) {
			o := order{id: "o3", userID: "B", item: "cup", price: 20, key: orderKey("B", "k4"), status: "failed", failure: "insufficient funds"}
			snap.orders["o3"], snap.byKey[o.key] = o, o
			snap.txs[chargeKey("o3")] = tx{id: "t8", kind: "purchase", from: "B", amount: 2000}
			recs[3].item = "cup"
		}, "nothing answered 4xx moved money"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, snap, recs, infos := fixture()
			tc.mutate(snap, recs, infos)
			failed := failedNames(s.checkSnapshot(snap, recs, infos))
			for _, f := range failed {
				if strings.HasPrefix(f, tc.want) || strings.Contains(strings.SplitN(f, ":", 2)[0], tc.want) {
					return
				}
			}
			t.Fatalf("not caught by %q; failed: %v", tc.want, failed)
		})
	}
}

func TestStatsOfWindow(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	recs := []record{
		{kind: kindInfo, start: at(-1), code: 500},           // before the window
		{kind: kindInfo, start: at(1), code: 500},            // failed
		{kind: kindBuy, start: at(2), code: 0},               // failed, no answer
		{kind: kindSend, start: at(3), code: 200, failed: 2}, // masked
		{kind: kindSend, start: at(4), code: 400},            // refused, not a failure
		{kind: kindLogin, start: at(11), code: 500},          // after the window
	}
	w := statsOf(recs, t0, at(10))
	if w.requests != 4 || w.failed != 2 || w.masked != 1 || w.failedBy[kindInfo] != 1 || w.failedBy[kindBuy] != 1 {
		t.Fatalf("stats = %+v", w)
	}
}

func TestFirstOK(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := &recorder{}
	r.add(record{kind: kindBuy, start: at(-100), end: at(50), code: 200}) // started before the fault
	r.add(record{kind: kindBuy, start: at(10), end: at(300), code: 500})
	r.add(record{kind: kindBuy, start: at(400), end: at(700), code: 200})
	r.add(record{kind: kindBuy, start: at(350), end: at(650), code: 200})
	got, ok := r.firstOK(kindBuy, t0)
	if !ok || !got.Equal(at(650)) {
		t.Fatalf("firstOK = %v %v, want +650ms", got.Sub(t0), ok)
	}
	if _, ok := r.firstOK(kindInfo, t0); ok {
		t.Fatal("firstOK found an info request")
	}
}

func TestKeysFollowTheServices(t *testing.T) {
	for got, want := range map[string]string{
		transferKey("u1", "k"): "transfer:u1:http:sendCoin:u1:k",
		orderKey("u1", "k"):    "http:buy:u1:k",
		chargeKey("o1"):        "charge:order:o1",
		refundKey("o1"):        "credit:refund:o1",
		openKey("u1"):          "open:u1",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}
