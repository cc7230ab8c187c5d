package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

var prices = map[string]int{
	"t-shirt": 80, "cup": 20, "book": 50, "pen": 10, "powerbank": 200,
	"hoody": 300, "umbrella": 200, "socks": 10, "wallet": 50, "pink-hoody": 500,
}

func TestHealthEndpoints(t *testing.T) {
	needSystem(t)
	t.Parallel()
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		wantStatus(t, do(t, "GET", p, ""), 200, p)
	}
	if m := string(do(t, "GET", "/metrics", "").body); !strings.Contains(m, "http_requests_total") {
		t.Error("/metrics has no http_requests_total")
	}
}

func TestAuth(t *testing.T) {
	needSystem(t)
	t.Parallel()
	u := newUser(t, "auth")
	if u.cookie == nil || !u.cookie.HttpOnly {
		t.Errorf("auth set no HttpOnly refresh_token cookie: %+v", u.cookie)
	}
	// Logging in again gives a token that works.
	u.login(t)
	if in := u.getInfo(t); in.coins != 1000 {
		t.Fatalf("coins %d", in.coins)
	}
	// Wrong password.
	r := do(t, "POST", "/api/auth", fmt.Sprintf(`{"username":%q,"password":"not-it"}`, u.name))
	wantError(t, r, 401, "wrong password")

	bad := map[string]string{
		"empty body":        ``,
		"empty object":      `{}`,
		"malformed JSON":    `{"username":"x",`,
		"not an object":     `["x","y"]`,
		"missing password":  fmt.Sprintf(`{"username":%q}`, uniqueName("nopw")),
		"missing username":  `{"password":"x"}`,
		"empty username":    `{"username":"","password":"x"}`,
		"too long username": fmt.Sprintf(`{"username":%q,"password":"x"}`, strings.Repeat("u", 65)),
		"number username":   `{"username":12,"password":"x"}`,
	}
	for name, body := range bad {
		wantError(t, do(t, "POST", "/api/auth", body), 400, name)
	}
}

func TestNewUserInfo(t *testing.T) {
	needSystem(t)
	t.Parallel()
	u := newUser(t, "fresh")
	r := do(t, "GET", "/api/info", "", u.auth()...)
	wantJSON(t, r, 200, `{"coins":1000,"inventory":[],"coinHistory":{"received":[],"sent":[]}}`, "new user info")
	intOf(t, object(t, r)["coins"], "coins") // a JSON number, not a string
}

func TestCatalog(t *testing.T) {
	needSystem(t)
	t.Parallel()
	r := do(t, "GET", "/api/merch", "")
	wantStatus(t, r, 200, "merch")
	items, ok := object(t, r)["items"].([]any)
	if !ok || len(items) != len(prices) {
		t.Fatalf("catalog %s, want %d items", r.body, len(prices))
	}
	for _, e := range items {
		it, _ := e.(map[string]any)
		name, _ := it["name"].(string)
		want, known := prices[name]
		if !known || intOf(t, it["price"], name) != want {
			t.Errorf("catalog item %v", e)
		}
	}
}

func TestBuyEveryItemAtItsPrice(t *testing.T) {
	needSystem(t)
	t.Parallel()
	// 1420 coins in all: two buyers.
	groups := [][]string{
		{"t-shirt", "cup", "book", "pen", "powerbank", "hoody", "umbrella"},
		{"socks", "wallet", "pink-hoody"},
	}
	for i, items := range groups {
		u := newUser(t, fmt.Sprint("buyer", i))
		balance := 1000
		bought := map[string]int{}
		for j, item := range items {
			method := "GET"
			if j%2 == 1 {
				method = "POST" // POST /api/buy/{item} works too
			}
			u.mustBuy(t, method, item)
			balance -= prices[item]
			bought[item]++
			in := u.getInfo(t) // read-your-writes: no waiting
			if in.coins != balance {
				t.Fatalf("after buying %s: coins %d, want %d (price %d)", item, in.coins, balance, prices[item])
			}
			if !sameCounts(in.inventory, bought) {
				t.Fatalf("after buying %s: inventory %v, want %v", item, in.inventory, bought)
			}
			if len(in.sent)+len(in.received) != 0 {
				t.Fatalf("purchases show up as transfers: %+v", in)
			}
		}
	}
}

func TestInventoryAggregates(t *testing.T) {
	needSystem(t)
	t.Parallel()
	u := newUser(t, "collector")
	for _, item := range []string{"cup", "pen", "cup", "socks", "cup", "pen"} {
		u.mustBuy(t, "GET", item)
	}
	in := u.getInfo(t)
	want := map[string]int{"cup": 3, "pen": 2, "socks": 1}
	if !sameCounts(in.inventory, want) || in.coins != 1000-3*20-2*10-10 {
		t.Fatalf("inventory %v coins %d, want %v and %d", in.inventory, in.coins, want, 1000-3*20-2*10-10)
	}
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestInsufficientFunds(t *testing.T) {
	needSystem(t)
	t.Parallel()
	u, other := newUser(t, "spender"), newUser(t, "spender-friend")
	u.mustBuy(t, "GET", "pink-hoody")
	u.mustBuy(t, "GET", "pink-hoody")
	wantError(t, do(t, "GET", "/api/buy/pen", "", u.auth()...), 400, "buy with no coins")
	wantError(t, do(t, "POST", "/api/buy/pen", "", u.auth()...), 400, "POST buy with no coins")
	r, err := u.send(other.name, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, r, 400, "send with no coins")
	if in := u.getInfo(t); in.coins != 0 || in.inventory["pink-hoody"] != 2 || len(in.inventory) != 1 {
		t.Fatalf("after refusals: %+v", in)
	}
	// Sending more than the balance.
	r, err = other.send(u.name, 1001)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, r, 400, "send more than the balance")
	if in := other.getInfo(t); in.coins != 1000 || len(in.sent) != 0 {
		t.Fatalf("balance changed by a refused send: %+v", in)
	}
}

func TestSendCoinBadInput(t *testing.T) {
	needSystem(t)
	t.Parallel()
	u, other := newUser(t, "validator"), newUser(t, "validator-peer")
	bodies := map[string]string{
		"self-transfer":     fmt.Sprintf(`{"toUser":%q,"amount":5}`, u.name),
		"unknown recipient": fmt.Sprintf(`{"toUser":%q,"amount":5}`, uniqueName("nobody")),
		"missing toUser":    `{"amount":5}`,
		"empty toUser":      `{"toUser":"","amount":5}`,
		"amount 0":          fmt.Sprintf(`{"toUser":%q,"amount":0}`, other.name),
		"amount -5":         fmt.Sprintf(`{"toUser":%q,"amount":-5}`, other.name),
		"amount 1.5":        fmt.Sprintf(`{"toUser":%q,"amount":1.5}`, other.name),
		`amount "10"`:       fmt.Sprintf(`{"toUser":%q,"amount":"10"}`, other.name),
		"amount 1e100":      fmt.Sprintf(`{"toUser":%q,"amount":1e100}`, other.name),
		"amount null":       fmt.Sprintf(`{"toUser":%q,"amount":null}`, other.name),
		"amount missing":    fmt.Sprintf(`{"toUser":%q}`, other.name),
		"amount too big":    fmt.Sprintf(`{"toUser":%q,"amount":99999999999}`, other.name),
		"malformed":         `{"toUser":`,
		"not an object":     `[1]`,
	}
	for name, body := range bodies {
		wantError(t, do(t, "POST", "/api/sendCoin", body, u.auth()...), 400, name)
	}
	wantError(t, do(t, "GET", "/api/buy/"+"no-such-item", "", u.auth()...), 400, "unknown item")
	wantError(t, do(t, "POST", "/api/buy/"+"no-such-item", "", u.auth()...), 400, "unknown item (POST)")
	for _, x := range []*user{u, other} {
		if in := x.getInfo(t); in.coins != 1000 || len(in.sent)+len(in.received)+len(in.inventory) != 0 {
			t.Fatalf("%s changed by refused requests: %+v", x.name, in)
		}
	}
}

func TestUnauthorized(t *testing.T) {
	needSystem(t)
	t.Parallel()
	u := newUser(t, "intruder")
	parts := strings.Split(u.token, ".")
	enc := base64.RawURLEncoding
	none := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	sig := []byte(parts[2])
	i := len(sig) / 2
	if sig[i] == 'A' {
		sig[i] = 'B'
	} else {
		sig[i] = 'A'
	}
	tampered := parts[0] + "." + parts[1] + "." + string(sig)
	var claims map[string]any
	payload, _ := enc.DecodeString(parts[1])
	_ = json.Unmarshal(payload, &claims)
	claims["sub"] = "someone-else"
	forged, _ := json.Marshal(claims)
	swapped := parts[0] + "." + enc.EncodeToString(forged) + "." + parts[2]

	headers := map[string][]string{
		"no header":       nil,
		"empty bearer":    {"Authorization", "Bearer "},
		"garbage":         {"Authorization", "Bearer garbage"},
		"basic scheme":    {"Authorization", "Basic dXNlcjpwYXNz"},
		"token only":      {"Authorization", u.token},
		"alg none":        {"Authorization", "Bearer " + none},
		"bad signature":   {"Authorization", "Bearer " + tampered},
		"forged claims":   {"Authorization", "Bearer " + swapped},
		"two-part token":  {"Authorization", "Bearer " + parts[0] + "." + parts[1]},
		"unsigned header": {"Authorization", "Bearer " + parts[0] + ".."},
	}
	for name, h := range headers {
		wantError(t, do(t, "GET", "/api/info", "", h...), 401, name+": info")
		wantError(t, do(t, "POST", "/api/sendCoin", `{"toUser":"x","amount":1}`, h...), 401, name+": sendCoin")
		wantError(t, do(t, "GET", "/api/buy/pen", "", h...), 401, name+": buy")
		wantError(t, do(t, "GET", "/api/history", "", h...), 401, name+": history")
	}
	// The scheme is case-insensitive.
	wantStatus(t, do(t, "GET", "/api/info", "", "Authorization", "bearer "+u.token), 200, "lowercase bearer")
	if in := u.getInfo(t); in.coins != 1000 || len(in.inventory) != 0 {
		t.Fatalf("refused requests changed state: %+v", in)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	needSystem(t)
	t.Parallel()
	u := newUser(t, "lost")
	wantError(t, do(t, "GET", "/api/nothing-here", ""), 404, "unknown route")
	wantError(t, do(t, "GET", "/api/nothing-here", "", u.auth()...), 404, "unknown route with a token")
	wantError(t, do(t, "DELETE", "/api/info", "", u.auth()...), 405, "DELETE /api/info")
	wantError(t, do(t, "GET", "/api/sendCoin", "", u.auth()...), 405, "GET /api/sendCoin")
	wantError(t, do(t, "PUT", "/api/auth", `{}`), 405, "PUT /api/auth")
}

func TestOversizedBody(t *testing.T) {
	needSystem(t)
	t.Parallel()
	body := `{"username":"` + strings.Repeat("x", 200<<10) + `","password":"x"}`
	wantError(t, do(t, "POST", "/api/auth", body), 413, "200 KiB body")
}

func TestTransfersReadYourWrites(t *testing.T) {
	needSystem(t)
	t.Parallel()
	a, b, c := newUser(t, "ryw-a"), newUser(t, "ryw-b"), newUser(t, "ryw-c")
	a.mustSend(t, b, 10)
	if in := b.getInfo(t); in.coins != 1010 || in.received[a.name] != 10 {
		t.Fatalf("receiver right after the send: %+v", in)
	}
	a.mustSend(t, b, 15)
	a.mustSend(t, c, 5)
	c.mustSend(t, a, 7)

	in := a.getInfo(t)
	if in.coins != 1000-30+7 || !sameCounts(in.sent, map[string]int{b.name: 25, c.name: 5}) || !sameCounts(in.received, map[string]int{c.name: 7}) {
		t.Fatalf("sender: %+v", in)
	}
	in = b.getInfo(t)
	if in.coins != 1025 || !sameCounts(in.received, map[string]int{a.name: 25}) || len(in.sent) != 0 {
		t.Fatalf("receiver: %+v", in)
	}
	in = c.getInfo(t)
	if in.coins != 998 || !sameCounts(in.received, map[string]int{a.name: 5}) || !sameCounts(in.sent, map[string]int{a.name: 7}) {
		t.Fatalf("third user: %+v", in)
	}
}

func TestIdempotentRetries(t *testing.T) {
	needSystem(t)
	t.Parallel()
	a, b := newUser(t, "idem-a"), newUser(t, "idem-b")

	key := []string{"Idempotency-Key", "send-" + randomHex(8)}
	a.mustSend(t, b, 30, key...)
	a.mustSend(t, b, 30, key...) // the retry answers the first outcome
	if in := a.getInfo(t); in.coins != 970 || in.sent[b.name] != 30 {
		t.Fatalf("a retried send moved money twice: %+v", in)
	}

	xkey := []string{"X-Idempotency-Key", "buy-" + randomHex(8)}
	a.mustBuy(t, "GET", "book", xkey...)
	a.mustBuy(t, "GET", "book", xkey...)
	if in := a.getInfo(t); in.coins != 920 || in.inventory["book"] != 1 {
		t.Fatalf("a retried purchase charged twice: %+v", in)
	}

	// Ten concurrent sends with one key move money once.
	key = []string{"Idempotency-Key", "burst-" + randomHex(8)}
	var wg sync.WaitGroup
	results := make([]reply, 10)
	errs := make([]error, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = a.send(b.name, 7, key...)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		wantJSON(t, r, 200, `{}`, fmt.Sprintf("concurrent retry %d", i))
	}
	if in := b.getInfo(t); in.coins != 1037 || in.received[a.name] != 37 {
		t.Fatalf("concurrent retries: receiver %+v, want 1037 coins", in)
	}

	// A new key is a new operation.
	a.mustSend(t, b, 1, "Idempotency-Key", "other-"+randomHex(8))
	if in := b.getInfo(t); in.coins != 1038 {
		t.Fatalf("new key: receiver coins %d, want 1038", in.coins)
	}
}

func TestConcurrentTransfersKeepTotal(t *testing.T) {
	needSystem(t)
	t.Parallel()
	const n, perUser = 20, 8
	users := make([]*user, n)
	for i := range users {
		users[i] = newUser(t, fmt.Sprint("crowd", i))
	}
	type outcome struct {
		from, to, amount int
		ok               bool
		err              error
	}
	outcomes := make(chan outcome, n*perUser)
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for range perUser {
				to := rng.IntN(n - 1)
				if to >= i {
					to++
				}
				amount := 1 + rng.IntN(300)
				r, err := users[i].send(users[to].name, amount)
				switch {
				case err != nil:
					outcomes <- outcome{err: err}
				case r.status == 200:
					outcomes <- outcome{from: i, to: to, amount: amount, ok: true}
				case r.status == 400: // insufficient funds is a fair answer
					outcomes <- outcome{from: i, to: to, amount: amount}
				default:
					outcomes <- outcome{err: fmt.Errorf("send %d from %d to %d: %d %s", amount, i, to, r.status, r.body)}
				}
			}
		}()
	}
	wg.Wait()
	close(outcomes)
	want := make([]int, n)
	for i := range want {
		want[i] = 1000
	}
	moved := 0
	for o := range outcomes {
		if o.err != nil {
			t.Error(o.err)
			continue
		}
		if o.ok {
			want[o.from] -= o.amount
			want[o.to] += o.amount
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no transfer succeeded")
	}
	total := 0
	for i, u := range users {
		in := u.getInfo(t)
		total += in.coins
		if in.coins != want[i] {
			t.Errorf("%s: coins %d, want %d from the answered transfers", u.name, in.coins, want[i])
		}
		if in.coins < 0 {
			t.Errorf("%s: negative balance %d", u.name, in.coins)
		}
	}
	if total != n*1000 {
		t.Fatalf("total of all balances %d, want %d", total, n*1000)
	}
}

func TestLegacyAliases(t *testing.T) {
	needSystem(t)
	t.Parallel()
	a, b := newUser(t, "legacy-a"), newUser(t, "legacy-b")
	check := func(r reply, what string) {
		t.Helper()
		wantStatus(t, r, 200, what)
		m := object(t, r)
		id, _ := m["transaction_id"].(string)
		if len(m) != 2 || id == "" || m["status"] != "COMPLETED" {
			t.Fatalf(`%s: body %s, want {"transaction_id":"...","status":"COMPLETED"}`, what, r.body)
		}
	}
	check(do(t, "POST", "/api/coins/send", fmt.Sprintf(`{"to_user":%q,"amount":40}`, b.name), a.auth()...), "legacy send")
	check(do(t, "POST", "/api/merch/buy/umbrella", "", a.auth()...), "legacy buy")
	in := a.getInfo(t)
	if in.coins != 1000-40-200 || in.sent[b.name] != 40 || in.inventory["umbrella"] != 1 {
		t.Fatalf("after legacy calls: %+v", in)
	}
	wantError(t, do(t, "POST", "/api/coins/send", fmt.Sprintf(`{"to_user":%q,"amount":"40"}`, b.name), a.auth()...), 400, "legacy send with a string amount")
	wantError(t, do(t, "POST", "/api/merch/buy/no-such-item", "", a.auth()...), 400, "legacy buy of an unknown item")
}

func refreshWith(t *testing.T, cookie string) reply {
	t.Helper()
	return do(t, "POST", "/api/auth/refresh", "", "Cookie", "refresh_token="+cookie)
}

func TestRefreshAndLogout(t *testing.T) {
	needSystem(t)
	t.Parallel()
	u := newUser(t, "session")
	if u.cookie == nil || u.cookie.Value == "" {
		t.Fatal("auth set no refresh_token cookie")
	}
	if !u.cookie.HttpOnly || u.cookie.Path != "/api/auth" {
		t.Errorf("cookie attributes: %+v", u.cookie)
	}
	first := u.cookie.Value

	r := refreshWith(t, first)
	wantStatus(t, r, 200, "refresh")
	tok, _ := object(t, r)["token"].(string)
	next := refreshCookie(r)
	if tok == "" || next == nil || next.Value == "" || next.Value == first {
		t.Fatalf("refresh answered %s with cookie %+v", r.body, next)
	}
	if r := do(t, "GET", "/api/info", "", "Authorization", "Bearer "+tok); r.status != 200 {
		t.Fatalf("refreshed token refused: %d %s", r.status, r.body)
	}
	// The rotated-away token is refused.
	wantError(t, refreshWith(t, first), 401, "reused refresh token")
	wantError(t, do(t, "POST", "/api/auth/refresh", ""), 401, "refresh without a cookie")

	// Logout ends the session.
	v := newUser(t, "logout")
	r = do(t, "DELETE", "/api/auth/logout", "", "Cookie", "refresh_token="+v.cookie.Value)
	wantJSON(t, r, 200, `{}`, "logout")
	if c := refreshCookie(r); c == nil || c.MaxAge >= 0 {
		t.Errorf("logout did not expire the cookie: %+v", c)
	}
	wantError(t, refreshWith(t, v.cookie.Value), 401, "refresh after logout")
}

func TestHistoryEventuallyListsTheLedger(t *testing.T) {
	needSystem(t)
	t.Parallel()
	a, b := newUser(t, "hist-a"), newUser(t, "hist-b")
	a.mustSend(t, b, 42)
	a.mustBuy(t, "GET", "pen")
	// The itemised history comes from ClickHouse and may trail the ledger.
	eventually(t, 20*time.Second, "history of the sender", func() (bool, string) {
		entries, state := history(a)
		var sent, bought bool
		for _, e := range entries {
			sent = sent || (e.Kind == "transfer_out" && e.Counterpart == b.name && e.Amount == -42)
			bought = bought || (e.Kind == "purchase" && e.Counterpart == "pen" && e.Amount == -10)
		}
		return sent && bought, state
	})
	eventually(t, 20*time.Second, "history of the receiver", func() (bool, string) {
		entries, state := history(b)
		for _, e := range entries {
			if e.Kind == "transfer_in" && e.Counterpart == a.name && e.Amount == 42 {
				return true, state
			}
		}
		return false, state
	})
}

type historyEntry struct {
	TransactionID string `json:"transactionId"`
	Kind          string `json:"kind"`
	Counterpart   string `json:"counterpart"`
	Amount        int    `json:"amount"`
	Time          string `json:"time"`
}

// history reads the first page of GET /api/history; entries are nil unless
// the page is well-formed (amounts numbers, times RFC 3339, ids set).
func history(u *user) ([]historyEntry, string) {
	r, err := call("GET", "/api/history?limit=50", "", u.auth()...)
	if err != nil {
		return nil, err.Error()
	}
	state := fmt.Sprint(r.status, " ", string(r.body))
	if r.status != 200 {
		return nil, state
	}
	var page struct {
		Entries    []historyEntry `json:"entries"`
		NextCursor *string        `json:"nextCursor"`
	}
	// Decoding into int fails for an amount that is a string.
	if err := json.Unmarshal(r.body, &page); err != nil || page.Entries == nil || page.NextCursor == nil {
		return nil, "malformed page: " + state
	}
	for _, e := range page.Entries {
		if _, err := time.Parse(time.RFC3339, e.Time); err != nil || e.TransactionID == "" || e.Kind == "" {
			return nil, "malformed entry: " + state
		}
	}
	return page.Entries, state
}
