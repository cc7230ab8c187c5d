// Package users holds what the load tools share about the seeded users: the
// deterministic names and passwords, the users file and the loopback-only
// rule for targets.
package users

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// Name is the username of user i.
func Name(prefix string, i int) string { return fmt.Sprintf("%s-%06d", prefix, i) }

// Password is user i's password; deterministic, so a later run logs the same
// user in again instead of failing on a wrong password.
func Password(prefix string, i int) string { return fmt.Sprintf("pw-%s-%06d-x", prefix, i) }

// User is one line of the users file.
type User struct {
	Name, Password, Token string
}

// Read reads a users file: "name<TAB>password<TAB>token" per line.
func Read(path string) ([]User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []User
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if sc.Text() == "" {
			continue
		}
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
			return nil, fmt.Errorf("%s:%d: want name, password and token separated by tabs", path, n)
		}
		out = append(out, User{Name: parts[0], Password: parts[1], Token: parts[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("%s: fewer than 2 users", path)
	}
	return out, nil
}

// CheckLoopback refuses any target but this machine's loopback: the load
// tools never send traffic anywhere else.
func CheckLoopback(target string) error {
	host := target
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil {
			return fmt.Errorf("target %q: %w", target, err)
		}
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(target); err == nil {
		host = h
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("refusing target " + target + ": only loopback addresses are allowed")
}
