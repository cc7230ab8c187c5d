package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/merchshop/merchshop/tests/load/internal/users"
)

// userAgent names the generator in the services' access logs.
const userAgent = "merchshop-load/1 (shoot)"

// droppedScheme is the URL scheme of the requests the generator drops: the
// transport hands them to droppedRoundTripper, which fails them without
// touching the network, so a drop costs the system nothing and reaches the
// results like any request.
const droppedScheme = "shoot-dropped"

// kind is an endpoint of the shop.
type kind int

const (
	kindInfo kind = iota
	kindBuy
	kindSend
	kindAuth
	numKinds
)

func (k kind) String() string {
	switch k {
	case kindInfo:
		return "info"
	case kindBuy:
		return "buy"
	case kindSend:
		return "send"
	case kindAuth:
		return "auth"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// mix is a profile: endpoints with integer weights.
type mix struct {
	kinds   []kind
	weights []int
	total   int
}

// profileMix returns the endpoints of a profile, with the shares of
// tests/load/README.md: mixed is 70% info, 15% buy, 15% send.
func profileMix(profile string) (mix, error) {
	var m mix
	switch profile {
	case "mixed":
		m = mix{kinds: []kind{kindInfo, kindBuy, kindSend}, weights: []int{70, 15, 15}}
	case "info":
		m = mix{kinds: []kind{kindInfo}, weights: []int{1}}
	case "auth":
		m = mix{kinds: []kind{kindAuth}, weights: []int{1}}
	case "buy":
		// One route at a time for the cost table: purchases only (pen and
		// socks alike, as in mixed).
		m = mix{kinds: []kind{kindBuy}, weights: []int{1}}
	case "send":
		m = mix{kinds: []kind{kindSend}, weights: []int{1}}
	default:
		return m, fmt.Errorf("profile %q: want mixed, info, auth, buy or send", profile)
	}
	for _, w := range m.weights {
		m.total += w
	}
	return m, nil
}

// pick draws an endpoint; intN(n) returns a uniform number in [0, n).
func (m mix) pick(intN func(int) int) kind {
	if len(m.kinds) == 1 {
		return m.kinds[0]
	}
	x := intN(m.total)
	for i, w := range m.weights {
		if x < w {
			return m.kinds[i]
		}
		x -= w
	}
	return m.kinds[len(m.kinds)-1]
}

// shopUser is a seeded user with what its requests need, prepared once:
// the Authorization header value and the JSON-quoted name and password.
type shopUser struct {
	bearer   []string // {"Bearer <token>"}
	name     string   // JSON string literal, quotes included
	password string   // JSON string literal, quotes included
	addr     []string // {"10.a.b.c"}: the user's own client address
}

// userAddr is the i-th user's client address, sent as X-Forwarded-For
// with plan.forwardedFor: distinct per user, as real clients are.
func userAddr(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", (i>>16)&0xff, (i>>8)&0xff, i&0xff)
}

// route is one request line (method and URL) and the URL the request has
// when it is dropped.
type route struct {
	kind    kind
	method  string
	url     string
	dropURL string
}

// plan builds the requests of a profile: each one picks a random user and,
// for the mixed profile, a random endpoint.
type plan struct {
	mix   mix
	users []shopUser
	intN  func(int) int // safe for concurrent use in a run

	info, send, auth route
	buy              []route // one per cheap item

	// Shared header values; vegeta copies a target's header into each
	// request, so these are only read.
	json, agent []string
	authHeader  http.Header
	byURL       map[string]route // results carry the URL they were sent to

	// forwardedFor makes every login carry X-Forwarded-For with the user's
	// own address, as behind an ingress (the gateway must trust the
	// generator's address, GATEWAY_TRUSTED_PROXIES): the per-address login
	// limit then applies per user rather than to the whole load at once.
	forwardedFor bool
}

// cheapItems cost 10 coins: a user's 1000 last for a hundred purchases.
func cheapItems() []string { return []string{"pen", "socks"} }

func newPlan(base, profile string, us []users.User, intN func(int) int) (*plan, error) {
	m, err := profileMix(profile)
	if err != nil {
		return nil, err
	}
	if len(us) < 2 {
		return nil, fmt.Errorf("%d users: need at least 2 (one sends coins to another)", len(us))
	}
	base = strings.TrimRight(base, "/")
	p := &plan{
		mix: m, intN: intN, users: make([]shopUser, len(us)),
		json: []string{"application/json"}, agent: []string{userAgent},
		byURL: map[string]route{},
	}
	p.authHeader = http.Header{"Content-Type": p.json, "User-Agent": p.agent}
	for i, u := range us {
		name, err := json.Marshal(u.Name)
		if err != nil {
			return nil, fmt.Errorf("user %d: %w", i, err)
		}
		pw, err := json.Marshal(u.Password)
		if err != nil {
			return nil, fmt.Errorf("user %d: %w", i, err)
		}
		p.users[i] = shopUser{bearer: []string{"Bearer " + u.Token}, name: string(name), password: string(pw), addr: []string{userAddr(i)}}
	}
	mk := func(k kind, method, path string) route {
		r := route{kind: k, method: method, url: base + path, dropURL: droppedScheme + "://dropped" + path}
		p.byURL[r.url] = r
		p.byURL[r.dropURL] = r
		return r
	}
	p.info = mk(kindInfo, http.MethodGet, "/api/info")
	for _, item := range cheapItems() {
		p.buy = append(p.buy, mk(kindBuy, http.MethodGet, "/api/buy/"+item))
	}
	p.send = mk(kindSend, http.MethodPost, "/api/sendCoin")
	p.auth = mk(kindAuth, http.MethodPost, "/api/auth")
	return p, nil
}

func (p *plan) user() int { return p.intN(len(p.users)) }

// fill makes t a request of kind k, as the suite's earlier k6 script sent
// them (so results stay comparable): every request has Content-Type:
// application/json and the generator's User-Agent; all but logins carry a
// random user's bearer token; no Idempotency-Key. A dropped request keeps its endpoint's path (the
// results count drops by endpoint) under droppedScheme, without body or
// headers.
func (p *plan) fill(t *vegeta.Target, k kind, dropped bool) {
	var r route
	switch k {
	case kindBuy:
		r = p.buy[p.intN(len(p.buy))]
	case kindSend:
		r = p.send
	case kindAuth:
		r = p.auth
	default:
		r = p.info
	}
	t.Method = r.method
	if dropped {
		t.URL = r.dropURL
		return
	}
	t.URL = r.url
	if k == kindAuth {
		u := &p.users[p.user()]
		t.Body = jsonObject(`{"username":`, u.name, `,"password":`, u.password, `}`)
		t.Header = p.authHeader
		if p.forwardedFor {
			t.Header = http.Header{"Content-Type": p.json, "User-Agent": p.agent, "X-Forwarded-For": u.addr}
		}
		return
	}
	from := p.user()
	if k == kindSend {
		to := p.user()
		for to == from {
			to = p.user()
		}
		t.Body = jsonObject(`{"toUser":`, p.users[to].name, `,"amount":1}`)
	}
	t.Header = http.Header{"Authorization": p.users[from].bearer, "Content-Type": p.json, "User-Agent": p.agent}
}

// jsonObject concatenates parts into one new slice (a request's body must
// not be shared: the transport may still read it after the answer).
func jsonObject(parts ...string) []byte {
	n := 0
	for _, s := range parts {
		n += len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range parts {
		b = append(b, s...)
	}
	return b
}
