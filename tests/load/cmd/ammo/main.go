// Command ammo writes Yandex Tank ammo for the four endpoints from a users
// file (the seeding command's output): raw "phantom" ammo, one HTTP/1.1
// request per entry as "<size> <tag>\n<request>", each request carrying a
// random user's token, so that phantom or pandora replay authenticated
// requests of many users.
//
// Profiles: mixed (70% GET /api/info, 15% GET /api/buy/{pen|socks}, 15% POST
// /api/sendCoin of 1 coin), info, auth (POST /api/auth of existing users),
// all (the four endpoints, 25% each). Tags name the endpoint, so Tank's
// report splits by it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/merchshop/merchshop/tests/load/internal/users"
)

func main() {
	in := flag.String("users", "users.tsv", "users file from the seeding command")
	out := flag.String("out", "ammo.txt", "ammo file to write ('-' for stdout)")
	n := flag.Int("n", 100_000, "number of requests")
	profile := flag.String("profile", "mixed", "mixed, info, auth or all")
	host := flag.String("host", "127.0.0.1:8080", "Host header (loopback only)")
	seed := flag.Uint64("seed", 1, "random seed (the same seed writes the same ammo)")
	flag.Parse()
	if err := run(*in, *out, *n, *profile, *host, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "ammo:", err)
		os.Exit(1)
	}
}

func run(in, out string, n int, profile, host string, seed uint64) error {
	if err := users.CheckLoopback(host); err != nil {
		return err
	}
	mix, ok := mixes[profile]
	if !ok {
		return fmt.Errorf("profile %q: want mixed, info, auth or all", profile)
	}
	us, err := users.Read(in)
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	var f *os.File
	if out != "-" {
		if f, err = os.Create(out); err != nil {
			return err
		}
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	g := &generator{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), users: us, host: host}
	for range n {
		if err := g.write(bw, mix.pick(g.rnd)); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "ammo: %d %s requests of %d users -> %s\n", n, profile, len(us), out)
	return nil
}

// A mix is a list of endpoints with weights.
type mix []struct {
	kind   string
	weight int
}

func (m mix) pick(r *rand.Rand) string {
	total := 0
	for _, e := range m {
		total += e.weight
	}
	x := r.IntN(total)
	for _, e := range m {
		if x < e.weight {
			return e.kind
		}
		x -= e.weight
	}
	return m[len(m)-1].kind
}

var mixes = map[string]mix{
	"mixed": {{"info", 70}, {"buy", 15}, {"send", 15}},
	"info":  {{"info", 1}},
	"auth":  {{"auth", 1}},
	"all":   {{"auth", 1}, {"info", 1}, {"buy", 1}, {"send", 1}},
}

// cheap items: a user's 1000 coins last for a hundred purchases.
var cheap = []string{"pen", "socks"}

type generator struct {
	rnd   *rand.Rand
	users []users.User
	host  string
}

func (g *generator) user() users.User { return g.users[g.rnd.IntN(len(g.users))] }

// write appends one request of kind as a phantom ammo entry.
func (g *generator) write(w io.Writer, kind string) error {
	var method, path, body, token string
	switch kind {
	case "info":
		method, path, token = "GET", "/api/info", g.user().Token
	case "buy":
		method, path, token = "GET", "/api/buy/"+cheap[g.rnd.IntN(len(cheap))], g.user().Token
	case "send":
		from, to := g.user(), g.user()
		for to.Name == from.Name {
			to = g.user()
		}
		b, _ := json.Marshal(map[string]any{"toUser": to.Name, "amount": 1})
		method, path, body, token = "POST", "/api/sendCoin", string(b), from.Token
	case "auth":
		u := g.user()
		b, _ := json.Marshal(map[string]string{"username": u.Name, "password": u.Password})
		method, path, body = "POST", "/api/auth", string(b)
	default:
		return fmt.Errorf("unknown kind %q", kind)
	}
	req := Request(g.host, method, path, token, body)
	_, err := fmt.Fprintf(w, "%d %s\n%s\n", len(req), kind, req)
	return err
}

// Request renders one raw HTTP/1.1 request with CRLF line ends.
func Request(host, method, path, token, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: merchshop-load/1 (tank)\r\nConnection: keep-alive\r\n", method, path, host)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}
