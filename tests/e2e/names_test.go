package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Names in every alphabet: a name the rules accept works on every route,
// as sender and as recipient, and is shown exactly as registered (NFC); a
// name they refuse is answered 400 {"errors": "<the rule>"} and leaves no
// user, session or account behind.

// maxNameLen is the longest name, in characters (code points of the NFC form).
const maxNameLen = 64

// runDigits makes this run's names unique with digits only: ASCII letters
// (runID is hex) would mix scripts with a Cyrillic or Greek name.
var runDigits = func() string {
	n, _ := strconv.ParseUint(runID, 16, 64)
	return fmt.Sprintf("%010d", n)
}()

// nameSeq numbers the names of this run.
var nameSeq atomic.Int64

// digitsSuffix returns a fresh run-unique suffix of digits (14 of them).
func digitsSuffix() string {
	return fmt.Sprintf("%s%04d", runDigits, nameSeq.Add(1))
}

// postAuth is POST /api/auth with a JSON-encoded body (any name, any bytes).
func postAuth(t *testing.T, name, password string) reply {
	t.Helper()
	b, err := json.Marshal(map[string]string{"username": name, "password": password})
	if err != nil {
		t.Fatal(err)
	}
	return do(t, "POST", "/api/auth", string(b))
}

// sendTo is POST /api/sendCoin to a name spelled exactly as given.
func (u *user) sendTo(t *testing.T, to string, amount int) reply {
	t.Helper()
	b, err := json.Marshal(map[string]any{"toUser": to, "amount": amount})
	if err != nil {
		t.Fatal(err)
	}
	return do(t, "POST", "/api/sendCoin", string(b), u.auth()...)
}

// errorText is the message of a {"errors": "..."} answer with the status.
func errorText(t *testing.T, r reply, status int, what string) string {
	t.Helper()
	wantError(t, r, status, what)
	msg, _ := object(t, r)["errors"].(string)
	return msg
}

// spelling is one name: as typed (perhaps decomposed) and as stored.
type spelling struct {
	kind  string
	typed string
	nfc   string
}

// scripts the generator writes names in. Every name of these is one the
// rules accept: one script (Japanese and Korean mixes count as one),
// combining marks only after a letter, never the same mark twice, digits
// only at the end (ASCII, one numbering system).
type script struct {
	kind    string
	letters []rune
	marks   []rune // combining marks that may follow a letter
}

var scripts = []script{
	{"latin", []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-"), nil},
	{"latin-marks", []rune("aeiouncyAEIOUNCY"), []rune{0x0301, 0x0300, 0x0308, 0x0302, 0x0303, 0x0323, 0x030C}},
	{"cyrillic", []rune("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"), []rune{0x0301}},
	// Greek letters with tonos are precomposed: a second U+0301 on one
	// would repeat the mark, so only the dialytika is added.
	{"greek", []rune("αβγδεζηθικλμνξοπρστυφχψωςΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩάέήίόύώ"), []rune{0x0308}},
	{"han", []rune("山田太郎花子東京中文字王李張劉陳楊黃趙"), nil},
	{"japanese", []rune("山田太郎花子あいうえおかきくけこさしアイウエオカキクケコサシー"), nil},
	{"korean", []rune("가나다라마바사아자차카타파하김이박최정金李朴"), nil},
	{"arabic", []rune("ابتثجحخدذرزسشصضطظعغفقكلمنهوي"), []rune{0x064E, 0x064F, 0x0650, 0x0651}},
	{"hebrew", []rune("אבגדהוזחטיכלמנסעפצקרשת"), nil},
	{"devanagari", []rune("कखगघचछजझटठडढतथदधनपफबभमयरलवशसह"), []rune{0x0902, 0x093F, 0x0940, 0x0941, 0x0947}},
	{"thai", []rune("กขคงจฉชซญดตถทธนบปผพฟภมยรลวศษสหอฮ"), nil},
}

// genName writes a name of kind sc with this run's digits at the end: its
// NFC form has at most maxNameLen characters, exactly that when full.
func genName(rng *rand.Rand, sc script, full bool) spelling {
	suffix := digitsSuffix()
	budget := maxNameLen - len(suffix)
	target := budget
	if !full {
		target = 1 + rng.IntN(budget)
	}
	var core []rune
	count := func(rs []rune) int { return utf8.RuneCountInString(norm.NFC.String(string(rs))) }
	for count(core) < target {
		unit := []rune{sc.letters[rng.IntN(len(sc.letters))]}
		if len(sc.marks) > 0 && rng.IntN(3) == 0 {
			unit = append(unit, sc.marks[rng.IntN(len(sc.marks))])
			if len(sc.marks) > 1 && rng.IntN(3) == 0 {
				if m := sc.marks[rng.IntN(len(sc.marks))]; m != unit[1] {
					unit = append(unit, m)
				}
			}
		}
		if count(append(core[:len(core):len(core)], unit...)) > target {
			unit = unit[:1] // a plain letter is one character
		}
		core = append(core, unit...)
	}
	nfc := norm.NFC.String(string(core) + suffix)
	typed := nfc
	if rng.IntN(2) == 0 {
		typed = norm.NFD.String(nfc) // the decomposed spelling must reach the same user
	}
	return spelling{kind: sc.kind, typed: typed, nfc: nfc}
}

// otherSpelling is the name spelled the other way (decomposed if it was
// typed composed); the server must take it for the same name.
func (s spelling) otherSpelling() string {
	if s.typed == s.nfc {
		return norm.NFD.String(s.nfc)
	}
	return s.nfc
}

// spoil makes a name the rules refuse out of an accepted one, and says
// which rule that is: an emoji, a letter of a clashing script (Latin for a
// Cyrillic name, Cyrillic for any other) or a space, at a random place.
func spoil(rng *rand.Rand, n spelling) (string, string) {
	rs := []rune(n.nfc)
	at := rng.IntN(len(rs) + 1)
	var insert rune
	var rule string
	kind := rng.IntN(3)
	if kind == 1 && !strings.ContainsFunc(n.nfc, func(r rune) bool { return unicode.IsLetter(r) && !unicode.Is(unicode.Common, r) }) {
		kind = 0 // no letter of any script ("_" or "ー"): another script would not clash
	}
	switch kind {
	case 0:
		insert, rule = []rune("😀🎉♥☃")[rng.IntN(4)], "username may contain only letters, digits, combining marks and ASCII punctuation"
	case 1:
		insert, rule = 'а', "username must not mix scripts" // Cyrillic а
		if strings.ContainsFunc(n.nfc, func(r rune) bool { return 0x0400 <= r && r <= 0x04FF }) {
			insert = 'a'
		}
	default:
		insert, rule = ' ', "username must not contain spaces"
	}
	out := string(rs[:at]) + string(insert) + string(rs[at:])
	if utf8.RuneCountInString(norm.NFC.String(out)) > maxNameLen {
		rule = "username must be at most 64 characters"
	}
	return out, rule
}

// TestNamesInEveryScriptWorkEverywhere is the property: for random names
// from many scripts (with combining marks, in both spellings, up to the
// maximum length), every route answers 200 and the names come back as
// registered; each spoiled with an emoji, a clashing script or a space is
// refused with its rule and leaves nothing behind. Each user sends to and receives from the one before it, so
// every name is both a sender and a recipient of another such name.
// E2E_NAMES_SEED repeats a run; E2E_NAMES_COUNT sets how many names.
func TestNamesInEveryScriptWorkEverywhere(t *testing.T) {
	needSystem(t)
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("E2E_NAMES_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("E2E_NAMES_SEED %q: %v", s, err)
		}
		seed = v
	}
	count := 2 * len(scripts)
	if s := os.Getenv("E2E_NAMES_COUNT"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("E2E_NAMES_COUNT %q: want a positive number", s)
		}
		count = v
	}
	t.Logf("E2E_NAMES_SEED=%d E2E_NAMES_COUNT=%d", seed, count)
	rng := rand.New(rand.NewPCG(seed, 0x6e616d6573))

	// Every script at least once, and once at the maximum length.
	var names []spelling
	for i := range count {
		sc := scripts[i%len(scripts)]
		if i >= len(scripts) {
			sc = scripts[rng.IntN(len(scripts))]
		}
		names = append(names, genName(rng, sc, i < len(scripts) && i%2 == 0 || rng.IntN(5) == 0))
	}
	// Fixed cases: a Cyrillic user, a Greek one, and the Алексей
	// with a stress mark, which has no precomposed form.
	for _, fixed := range []string{"Алексей", "Σωκράτης", "Алексе\u0301й"} {
		suffix := digitsSuffix()
		names = append(names, spelling{kind: "fixed", typed: fixed + suffix, nfc: norm.NFC.String(fixed + suffix)})
	}

	anchor := newUser(t, "names-anchor")
	prev := spelling{kind: "anchor", typed: anchor.name, nfc: anchor.name}
	prevUser := anchor
	users := make([]*user, len(names))
	subjects := map[string]string{}
	for i, n := range names {
		what := fmt.Sprintf("%s name %q (NFC %q, %d characters)", n.kind, n.typed, n.nfc, utf8.RuneCountInString(n.nfc))
		u := &user{name: n.typed, password: "pw-" + randomHex(6)}
		r := postAuth(t, n.typed, u.password)
		u.token = tokenOf(t, r, "register "+what)
		users[i] = u
		sub := subject(t, u.token)
		subjects[n.nfc] = sub
		if claims := jwtPart(t, u.token, 1); claims["name"] != n.nfc {
			t.Errorf("%s: token name %q, want the NFC form", what, claims["name"])
		}
		// The other spelling logs in to the same user.
		again := tokenOf(t, postAuth(t, n.otherSpelling(), u.password), "login with the other spelling of "+what)
		if s := subject(t, again); s != sub {
			t.Fatalf("%s: the other spelling is user %s, the first %s", what, s, sub)
		}
		if in := u.getInfo(t); in.coins != 1000 {
			t.Fatalf("%s: new user has %d coins", what, in.coins)
		}
		wantJSON(t, do(t, "GET", "/api/buy/pen", "", u.auth()...), 200, `{}`, "buy pen as "+what)
		// Send to the previous user, and receive from it through the
		// other spelling of this name.
		wantJSON(t, u.sendTo(t, prev.otherSpelling(), 7), 200, `{}`, what+" sends to "+prev.nfc)
		wantJSON(t, prevUser.sendTo(t, n.otherSpelling(), 5), 200, `{}`, prev.nfc+" sends to "+what)
		// The same name spoiled is refused with its rule, twice (the first
		// refusal made no user), and a transfer to it moves nothing (the
		// balances below are exact).
		bad, rule := spoil(rng, n)
		for attempt := range 2 {
			msg := errorText(t, postAuth(t, bad, "pw"), 400, fmt.Sprintf("register spoiled %q (attempt %d)", bad, attempt+1))
			if !strings.HasPrefix(msg, rule) {
				t.Errorf("register spoiled %q: %q, want the rule %q", bad, msg, rule)
			}
		}
		errorText(t, u.sendTo(t, bad, 3), 400, fmt.Sprintf("send to spoiled %q", bad))
		prev, prevUser = n, u
	}

	// Every user: the pen, the two transfers each way, names as registered.
	for i, n := range names {
		before := spelling{nfc: anchor.name}
		if i > 0 {
			before = names[i-1]
		}
		wantSent := map[string]int{before.nfc: 7}
		wantReceived := map[string]int{before.nfc: 5}
		coins := 1000 - 10 - 7 + 5
		if i+1 < len(names) {
			after := names[i+1]
			wantSent[after.nfc] = 5
			wantReceived[after.nfc] = 7
			coins += 7 - 5
		}
		in := users[i].getInfo(t)
		if in.coins != coins || in.inventory["pen"] != 1 || len(in.inventory) != 1 ||
			!sameCounts(in.sent, wantSent) || !sameCounts(in.received, wantReceived) {
			t.Errorf("%s name %q: info %+v, want %d coins, one pen, sent %v, received %v",
				n.kind, n.nfc, in, coins, wantSent, wantReceived)
		}
	}
	if in := anchor.getInfo(t); in.sent[names[0].nfc] != 5 || in.received[names[0].nfc] != 7 {
		t.Errorf("anchor: %+v, want sent 5 to and received 7 from %q", in, names[0].nfc)
	}

	// The ClickHouse history lists the same names (it may trail the ledger).
	eventually(t, 30*time.Second, "history shows the counterparts as registered", func() (bool, string) {
		for i, n := range names {
			before := anchor.name
			if i > 0 {
				before = names[i-1].nfc
			}
			entries, state := history(users[i])
			var out, in bool
			for _, e := range entries {
				out = out || e.Kind == "transfer_out" && e.Counterpart == before && e.Amount == -7
				in = in || e.Kind == "transfer_in" && e.Counterpart == before && e.Amount == 5
			}
			if !out || !in {
				return false, fmt.Sprintf("%s name %q: %s", n.kind, n.nfc, state)
			}
		}
		return true, ""
	})
}

func TestCyrillicUserUsesEveryRoute(t *testing.T) {
	needSystem(t)
	t.Parallel()
	suffix := digitsSuffix()
	a := &user{name: "Алексей" + suffix, password: "secret"}
	a.token = tokenOf(t, postAuth(t, a.name, a.password), "register Алексей")
	b := newUser(t, "alexey-peer")
	if in := a.getInfo(t); in.coins != 1000 {
		t.Fatalf("coins %d", in.coins)
	}
	wantJSON(t, do(t, "GET", "/api/buy/pen", "", a.auth()...), 200, `{}`, "GET buy")
	wantJSON(t, do(t, "POST", "/api/buy/cup", "", a.auth()...), 200, `{}`, "POST buy")
	wantJSON(t, b.sendTo(t, a.name, 40), 200, `{}`, "send to Алексей")
	wantJSON(t, a.sendTo(t, b.name, 15), 200, `{}`, "Алексей sends")
	r := do(t, "POST", "/api/coins/send", fmt.Sprintf(`{"to_user":%s,"amount":1}`, mustJSON(t, a.name)), b.auth()...)
	wantStatus(t, r, 200, "legacy send to Алексей")
	wantStatus(t, do(t, "POST", "/api/merch/buy/socks", "", a.auth()...), 200, "legacy buy")
	wantStatus(t, do(t, "GET", "/api/merch", "", a.auth()...), 200, "catalog")
	in := a.getInfo(t)
	if in.coins != 1000-10-20-10+40-15+1 || !sameCounts(in.received, map[string]int{b.name: 41}) || !sameCounts(in.sent, map[string]int{b.name: 15}) {
		t.Fatalf("Алексей: %+v", in)
	}
	if in := b.getInfo(t); !sameCounts(in.sent, map[string]int{a.name: 41}) || !sameCounts(in.received, map[string]int{a.name: 15}) {
		t.Fatalf("peer: %+v", in)
	}
	// Refresh keeps working for the user (the name is in the session).
	login := postAuth(t, a.name, a.password)
	c := refreshCookie(login)
	if c == nil {
		t.Fatal("no refresh cookie")
	}
	wantStatus(t, do(t, "POST", "/api/auth/refresh", "", "Cookie", "refresh_token="+c.Value), 200, "refresh")
	eventually(t, 30*time.Second, "history of Алексей", func() (bool, string) {
		entries, state := history(a)
		for _, e := range entries {
			if e.Kind == "transfer_in" && e.Counterpart == b.name && e.Amount == 40 {
				return true, state
			}
		}
		return false, state
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestComposedAndDecomposedAreOneUser(t *testing.T) {
	needSystem(t)
	t.Parallel()
	for _, first := range []string{"composed", "decomposed"} {
		suffix := digitsSuffix()
		composed, decomposed := "Ren\u00e9e"+suffix, "Rene\u0301e"+suffix
		a, b := composed, decomposed
		if first == "decomposed" {
			a, b = b, a
		}
		u := &user{name: a, password: "pw-" + randomHex(6)}
		u.token = tokenOf(t, postAuth(t, a, u.password), "register "+first)
		v := &user{name: b, password: u.password}
		v.token = tokenOf(t, postAuth(t, b, u.password), "login with the other form")
		if s, w := subject(t, u.token), subject(t, v.token); s != w {
			t.Fatalf("registered %s: the two forms are users %s and %s", first, s, w)
		}
		wantError(t, postAuth(t, b, "not-the-password"), 401, "wrong password with the other form")
		wantJSON(t, do(t, "GET", "/api/buy/pen", "", u.auth()...), 200, `{}`, "buy")
		if in := v.getInfo(t); in.coins != 990 || in.inventory["pen"] != 1 {
			t.Fatalf("registered %s: the other form sees %+v, want the same balance (990) and pen", first, in)
		}
		// A transfer to either spelling reaches the one account, shown in
		// the NFC form.
		peer := newUser(t, "renee-peer-"+first)
		wantJSON(t, peer.sendTo(t, composed, 3), 200, `{}`, "send to composed")
		wantJSON(t, peer.sendTo(t, decomposed, 4), 200, `{}`, "send to decomposed")
		if in := peer.getInfo(t); !sameCounts(in.sent, map[string]int{composed: 7}) {
			t.Fatalf("peer's sent %v, want one entry %q: 7", in.sent, composed)
		}
		if in := u.getInfo(t); in.coins != 997 || !sameCounts(in.received, map[string]int{peer.name: 7}) {
			t.Fatalf("registered %s: %+v after 3 + 4 coins", first, in)
		}
	}
}

// TestRefusedNamesLeaveNothingBehind: each name the rules refuse answers
// 400 naming the rule, on the first try and on the next (no user was made
// of the first), and a transfer to it moves nothing.
func TestRefusedNamesLeaveNothingBehind(t *testing.T) {
	needSystem(t)
	t.Parallel()
	sender := newUser(t, "refused-sender")
	suffix := digitsSuffix()
	alice := &user{name: "alice" + suffix, password: "pw-" + randomHex(6)}
	alice.token = tokenOf(t, postAuth(t, alice.name, alice.password), "register alice")

	cases := []struct{ what, name, rule string }{
		{"Cyrillic а in alice", "\u0430lice" + suffix, "username must not mix scripts"},
		{"Greek ο in bob", "b\u03bfb" + suffix, "username must not mix scripts"},
		{"Latin and Cyrillic halves", "ivan\u0438\u0432\u0430\u043d" + suffix, "username must not mix scripts"},
		{"emoji", "party\U0001f389" + suffix, "username may contain only letters, digits, combining marks and ASCII punctuation"},
		{"symbol", "love\u2665" + suffix, "username may contain only letters, digits, combining marks and ASCII punctuation"},
		{"fullwidth", "\uff41\uff4c\uff49\uff43\uff45" + suffix, "username must not use fullwidth or halfwidth forms"},
		{"mixed digits", "user" + suffix + "\u0967", "username must not mix digits of different numbering systems"},
		{"leading mark", "\u0301x" + suffix, "username must not begin with, repeat or stack combining marks"},
		{"Latin with Arabic", "ali" + "\u0639\u0644\u064a" + suffix, "username must not mix right-to-left and left-to-right text"},
		{"space", "two words" + suffix, "username must not contain spaces"},
		{"no-break space", "no\u00a0break" + suffix, "username must not contain spaces"},
		{"zero-width space", "zero\u200bwidth" + suffix, "username must not contain control or invisible characters"},
		{"right-to-left override", "rlo\u202e" + suffix, "username must not contain control or invisible characters"},
		{"65 characters", strings.Repeat("я", maxNameLen+1-len(suffix)) + suffix, "username must be at most 64 characters"},
		{"65 decomposed characters", strings.Repeat("e\u0301", maxNameLen+1-len(suffix)) + suffix, "username must be at most 64 characters"},
	}
	for _, c := range cases {
		for attempt := range 2 {
			msg := errorText(t, postAuth(t, c.name, "pw"), 400, fmt.Sprintf("register %s (attempt %d)", c.what, attempt+1))
			if !strings.HasPrefix(msg, c.rule) {
				t.Errorf("register %s: %q, want the rule %q", c.what, msg, c.rule)
			}
		}
		r := sender.sendTo(t, c.name, 5)
		errorText(t, r, 400, "send to "+c.what)
	}
	if in := sender.getInfo(t); in.coins != 1000 || len(in.sent) != 0 {
		t.Fatalf("refused recipients moved coins: %+v", in)
	}
	// The look-alike did not touch alice either.
	if in := alice.getInfo(t); in.coins != 1000 || len(in.received) != 0 {
		t.Fatalf("alice: %+v", in)
	}
}
