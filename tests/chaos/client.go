package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// client talks to the gateway over HTTP, as a real client would.
type client struct {
	base string
	hc   *http.Client
}

func newClient(base string) *client {
	return &client{base: base, hc: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
	}}
}

// answer is one HTTP exchange. code 0 means there was no complete answer
// (connection refused or reset, timeout).
type answer struct {
	code       int
	body       []byte
	err        error
	retryAfter time.Duration
}

// transient: a real client retries it with the same idempotency key.
func (a answer) transient() bool { return a.code == 0 || a.code >= 500 }

func (a answer) String() string {
	if a.code == 0 {
		return fmt.Sprintf("no answer (%v)", a.err)
	}
	return fmt.Sprintf("%d %s", a.code, bytes.TrimSpace(a.body))
}

func (c *client) call(ctx context.Context, method, path, token, key string, body any) answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return answer{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{err: fmt.Errorf("read body: %w", err)}
	}
	a := answer{code: resp.StatusCode, body: b}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		a.retryAfter = time.Duration(s) * time.Second
	}
	return a
}

// retries is a client's retry policy: transient answers are retried with
// the same request (and idempotency key) after an exponential backoff.
type retries struct {
	attempts int
	backoff  time.Duration
	// limited: also retry 429 (after Retry-After, capped by maxWait).
	limited bool
	maxWait time.Duration
}

var workloadRetries = retries{attempts: 4, backoff: 300 * time.Millisecond}

// do runs f under the policy and returns the last answer, the number of
// attempts and how many of them were transient failures.
func (p retries) do(ctx context.Context, f func() answer) (a answer, attempts, failed int) {
	wait := p.backoff
	for attempts = 1; ; attempts++ {
		a = f()
		retry := a.transient() || (p.limited && a.code == http.StatusTooManyRequests)
		if a.transient() {
			failed++
		}
		if !retry || attempts >= p.attempts || ctx.Err() != nil {
			return a, attempts, failed
		}
		d := wait
		if a.code == http.StatusTooManyRequests && a.retryAfter > 0 {
			d = min(a.retryAfter, p.maxWait)
		}
		// The client's backoff between attempts (not a synchronisation).
		select {
		case <-ctx.Done():
			return a, attempts, failed
		case <-time.After(d):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// user is an account of this run.
type user struct {
	idx      int
	name     string
	password string
	id       string // from the token's sub
	token    string
}

func (c *client) login(ctx context.Context, u *user) answer {
	return c.call(ctx, http.MethodPost, "/api/auth", "", "", map[string]string{"username": u.name, "password": u.password})
}

// tokenOf reads the token of a login answer and its subject (the user id).
// The signature is the gateway's business; the suite only needs the id.
func tokenOf(a answer) (token, sub string, err error) {
	var resp struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(a.body, &resp); err != nil || resp.Token == "" {
		return "", "", fmt.Errorf("login answer without a token: %s", a)
	}
	parts := strings.Split(resp.Token, ".")
	if len(parts) != 3 {
		return "", "", errors.New("token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", "", fmt.Errorf("token payload: %w", err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Sub == "" {
		return "", "", errors.New("token without sub")
	}
	return resp.Token, claims.Sub, nil
}

// info is the body of GET /api/info.
type info struct {
	Coins     int64 `json:"coins"`
	Inventory []struct {
		Type     string `json:"type"`
		Quantity int64  `json:"quantity"`
	} `json:"inventory"`
	CoinHistory struct {
		Received []struct {
			FromUser string `json:"fromUser"`
			Amount   int64  `json:"amount"`
		} `json:"received"`
		Sent []struct {
			ToUser string `json:"toUser"`
			Amount int64  `json:"amount"`
		} `json:"sent"`
	} `json:"coinHistory"`
}

func (c *client) info(ctx context.Context, u *user) (info, answer) {
	a := c.call(ctx, http.MethodGet, "/api/info", u.token, "", nil)
	var in info
	if a.code == http.StatusOK {
		if err := json.Unmarshal(a.body, &in); err != nil {
			a.code, a.err = 0, fmt.Errorf("bad /api/info body: %w", err)
		}
	}
	return in, a
}

func (c *client) buy(ctx context.Context, u *user, item, key string) answer {
	return c.call(ctx, http.MethodGet, "/api/buy/"+item, u.token, key, nil)
}

func (c *client) send(ctx context.Context, from *user, to string, amount int, key string) answer {
	return c.call(ctx, http.MethodPost, "/api/sendCoin", from.token, key, map[string]any{"toUser": to, "amount": amount})
}
