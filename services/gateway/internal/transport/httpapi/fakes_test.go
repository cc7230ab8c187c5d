package httpapi_test

// In-process fake backends for the gateway's unit tests: real gRPC servers
// on bufconn implementing the generated service interfaces, sharing one
// small in-memory world.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	infov1 "github.com/merchshop/merchshop/gen/info/v1"
	merchv1 "github.com/merchshop/merchshop/gen/merch/v1"
)

const (
	testIssuer   = "merchshop-auth"
	testAudience = "merchshop"
)

var catalog = map[string]int64{
	"t-shirt": 80, "cup": 20, "book": 50, "pen": 10, "powerbank": 200,
	"hoody": 300, "umbrella": 200, "socks": 10, "wallet": 50, "pink-hoody": 500,
}

type signingKey struct {
	kid  string
	priv ed25519.PrivateKey
}

func newSigningKey(kid string) signingKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return signingKey{kid: kid, priv: priv}
}

type user struct {
	id, name, password string
	balance            int64
	inventory          map[string]int64
	sent, received     map[string]int64
}

type session struct {
	userID string
	active bool
}

// world is the shared state of the fake backends.
type world struct {
	mu        sync.Mutex
	users     map[string]*user // by name
	byID      map[string]*user
	sessions  map[string]*session // by refresh token
	idem      map[string]string   // idempotency key -> transaction id
	keys      []signingKey        // published keys; keys[0] signs
	nextID    int
	userAgent string // of the last Login

	transfers  atomic.Int64 // Transfer calls that moved money
	buys       atomic.Int64 // Buy calls that moved money
	keyFetches atomic.Int64
	logins     atomic.Int64 // Login calls
	lastCaller atomic.Value // user id (string) the last coins/merch call was made for
	// failWith makes every coins, merch and info call fail with its error.
	failWith atomic.Pointer[error]
	// authDown makes GetPublicKeys fail.
	authDown atomic.Bool
	// stall, when set, holds every GetInfo call (see stall).
	stall atomic.Pointer[stall]
}

// stall holds backend calls in flight: each call says it entered, then
// waits until release is closed or its context ends, and reports which.
type stall struct {
	entered chan struct{} // one send per call (buffered)
	release chan struct{}
	ended   chan error // nil: released; else the context's error (buffered)
}

func newStall(calls int) *stall {
	return &stall{entered: make(chan struct{}, calls), release: make(chan struct{}), ended: make(chan error, calls)}
}

// hold is a call's part of the stall.
func (s *stall) hold(ctx context.Context) error {
	s.entered <- struct{}{}
	select {
	case <-s.release:
		s.ended <- nil
		return nil
	case <-ctx.Done():
		s.ended <- ctx.Err()
		return status.FromContextError(ctx.Err()).Err()
	}
}

func newWorld() *world {
	return &world{
		users: map[string]*user{}, byID: map[string]*user{}, sessions: map[string]*session{},
		idem: map[string]string{}, keys: []signingKey{newSigningKey("k1")},
	}
}

func (w *world) fail() error {
	if p := w.failWith.Load(); p != nil {
		return *p
	}
	return nil
}

// setFail makes the backends fail with err (nil: work again).
func (w *world) setFail(err error) {
	if err == nil {
		w.failWith.Store(nil)
		return
	}
	w.failWith.Store(&err)
}

func (w *world) recordCaller(userID string) { w.lastCaller.Store(userID) }

// sign issues an access token; mutate can change the claims and header.
func (w *world) sign(key signingKey, u *user, mutate func(jwt.MapClaims)) string {
	now := time.Now()
	claims := jwt.MapClaims{
		"sub": u.id, "name": u.name, "iss": testIssuer, "aud": testAudience,
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	}
	if mutate != nil {
		mutate(claims)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = key.kid
	s, err := t.SignedString(key.priv)
	if err != nil {
		panic(err)
	}
	return s
}

func (w *world) newSession(u *user) *authv1.Session {
	w.nextID++
	tok := fmt.Sprintf("rt-%d-%s", w.nextID, u.id)
	w.sessions[tok] = &session{userID: u.id, active: true}
	return &authv1.Session{
		AccessToken:      w.sign(w.keys[0], u, nil),
		RefreshToken:     tok,
		RefreshExpiresAt: time.Now().Add(24 * time.Hour).Unix(),
		UserId:           u.id,
	}
}

func (w *world) registerLocked(name, password string) *user {
	w.nextID++
	u := &user{
		id: fmt.Sprintf("u-%d", w.nextID), name: name, password: password, balance: 1000,
		inventory: map[string]int64{}, sent: map[string]int64{}, received: map[string]int64{},
	}
	w.users[name] = u
	w.byID[u.id] = u
	return u
}

type fakeAuth struct {
	authv1.UnimplementedAuthServiceServer
	w *world
}

func (a *fakeAuth) Login(_ context.Context, req *authv1.LoginRequest) (*authv1.Session, error) {
	w := a.w
	w.logins.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	name := req.GetUsername()
	if len(name) > 64 || strings.ContainsAny(name, " \t") {
		return nil, status.Error(codes.InvalidArgument, "username must be 1 to 64 printable characters without spaces")
	}
	w.userAgent = req.GetUserAgent()
	u, ok := w.users[name]
	if !ok {
		u = w.registerLocked(name, req.GetPassword())
	} else if u.password != req.GetPassword() {
		return nil, status.Error(codes.Unauthenticated, "invalid username or password")
	}
	return w.newSession(u), nil
}

func (a *fakeAuth) Refresh(_ context.Context, req *authv1.RefreshRequest) (*authv1.Session, error) {
	w := a.w
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.sessions[req.GetRefreshToken()]
	if !ok || !s.active {
		return nil, status.Error(codes.Unauthenticated, "invalid refresh token")
	}
	s.active = false
	return w.newSession(w.byID[s.userID]), nil
}

func (a *fakeAuth) Logout(_ context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	w := a.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.sessions[req.GetRefreshToken()]; ok {
		s.active = false
	}
	return &authv1.LogoutResponse{}, nil
}

func (a *fakeAuth) GetPublicKeys(context.Context, *authv1.GetPublicKeysRequest) (*authv1.GetPublicKeysResponse, error) {
	w := a.w
	w.keyFetches.Add(1)
	if w.authDown.Load() {
		return nil, status.Error(codes.Unavailable, "auth is down")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	resp := &authv1.GetPublicKeysResponse{Issuer: testIssuer, Audience: testAudience}
	for _, k := range w.keys {
		resp.Keys = append(resp.Keys, &authv1.PublicKey{Kid: k.kid, Algorithm: "EdDSA", Key: k.priv.Public().(ed25519.PublicKey)})
	}
	return resp, nil
}

type fakeCoins struct {
	coinsv1.UnimplementedCoinsServiceServer
	w *world
}

func (c *fakeCoins) Transfer(ctx context.Context, req *coinsv1.TransferRequest) (*coinsv1.TransactionResponse, error) {
	w := c.w
	w.recordCaller(req.GetFromUserId())
	if err := w.fail(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if req.GetIdempotencyKey() == "" {
		return nil, status.Error(codes.InvalidArgument, "idempotency key is required")
	}
	if id, ok := w.idem[req.GetIdempotencyKey()]; ok {
		return &coinsv1.TransactionResponse{TransactionId: id, Replayed: true}, nil
	}
	from, to := w.byID[req.GetFromUserId()], w.users[req.GetToUsername()]
	switch {
	case req.GetAmount() < 1:
		return nil, status.Error(codes.InvalidArgument, "amount must be at least 1")
	case from == nil:
		return nil, status.Error(codes.NotFound, "unknown sender")
	case to == nil:
		return nil, status.Error(codes.NotFound, "unknown recipient")
	case to == from:
		return nil, status.Error(codes.InvalidArgument, "cannot send coins to yourself")
	case from.balance < req.GetAmount():
		return nil, status.Error(codes.FailedPrecondition, "insufficient funds")
	}
	from.balance -= req.GetAmount()
	to.balance += req.GetAmount()
	from.sent[to.name] += req.GetAmount()
	to.received[from.name] += req.GetAmount()
	w.nextID++
	id := fmt.Sprintf("tx-%d", w.nextID)
	w.idem[req.GetIdempotencyKey()] = id
	w.transfers.Add(1)
	return &coinsv1.TransactionResponse{TransactionId: id}, nil
}

type fakeMerch struct {
	merchv1.UnimplementedMerchServiceServer
	w *world
}

func (m *fakeMerch) ListItems(context.Context, *merchv1.ListItemsRequest) (*merchv1.ListItemsResponse, error) {
	if err := m.w.fail(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(catalog))
	for n := range catalog {
		names = append(names, n)
	}
	sort.Strings(names)
	resp := &merchv1.ListItemsResponse{}
	for _, n := range names {
		resp.Items = append(resp.Items, &merchv1.Item{Name: n, Price: catalog[n]})
	}
	return resp, nil
}

func (m *fakeMerch) Buy(ctx context.Context, req *merchv1.BuyRequest) (*merchv1.BuyResponse, error) {
	w := m.w
	w.recordCaller(req.GetUserId())
	if err := w.fail(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if req.GetIdempotencyKey() == "" {
		return nil, status.Error(codes.InvalidArgument, "idempotency key is required")
	}
	if id, ok := w.idem[req.GetIdempotencyKey()]; ok {
		return &merchv1.BuyResponse{OrderId: id, Status: "COMPLETED"}, nil
	}
	price, ok := catalog[req.GetItem()]
	if !ok {
		return nil, status.Error(codes.NotFound, "unknown item")
	}
	u := w.byID[req.GetUserId()]
	if u == nil {
		return nil, status.Error(codes.NotFound, "unknown user")
	}
	if u.balance < price {
		return nil, status.Error(codes.FailedPrecondition, "insufficient funds")
	}
	u.balance -= price
	u.inventory[req.GetItem()]++
	w.nextID++
	id := fmt.Sprintf("order-%d", w.nextID)
	w.idem[req.GetIdempotencyKey()] = id
	w.buys.Add(1)
	return &merchv1.BuyResponse{OrderId: id, Status: "COMPLETED"}, nil
}

type fakeInfo struct {
	infov1.UnimplementedInfoServiceServer
	w *world
}

func sortedTotals(m map[string]int64) []*infov1.CounterpartTotal {
	var out []*infov1.CounterpartTotal
	for k, v := range m {
		out = append(out, &infov1.CounterpartTotal{Username: k, Amount: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}

func (f *fakeInfo) GetInfo(ctx context.Context, req *infov1.GetInfoRequest) (*infov1.GetInfoResponse, error) {
	w := f.w
	if s := w.stall.Load(); s != nil {
		if err := s.hold(ctx); err != nil {
			return nil, err
		}
	}
	if err := w.fail(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	u := w.byID[req.GetUserId()]
	if u == nil {
		return nil, status.Error(codes.NotFound, "unknown user")
	}
	resp := &infov1.GetInfoResponse{Coins: u.balance, Received: sortedTotals(u.received), Sent: sortedTotals(u.sent)}
	items := make([]string, 0, len(u.inventory))
	for it := range u.inventory {
		items = append(items, it)
	}
	sort.Strings(items)
	for _, it := range items {
		resp.Inventory = append(resp.Inventory, &infov1.InventoryItem{Item: it, Quantity: u.inventory[it]})
	}
	return resp, nil
}

func (f *fakeInfo) GetHistory(_ context.Context, req *infov1.GetHistoryRequest) (*infov1.GetHistoryResponse, error) {
	if err := f.w.fail(); err != nil {
		return nil, err
	}
	return &infov1.GetHistoryResponse{
		Entries: []*infov1.HistoryEntry{{
			TransactionId: "tx-1", Kind: "transfer_out", Counterpart: "bob", Amount: -25, TimeUnixMs: 1_700_000_000_123,
		}},
		NextCursor: "next-" + req.GetCursor(),
	}, nil
}

// backendConns runs the fake backends on bufconn and returns client
// connections to them (one server serves all four services).
func backendConns(t testing.TB, w *world) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	authv1.RegisterAuthServiceServer(srv, &fakeAuth{w: w})
	coinsv1.RegisterCoinsServiceServer(srv, &fakeCoins{w: w})
	merchv1.RegisterMerchServiceServer(srv, &fakeMerch{w: w})
	infov1.RegisterInfoServiceServer(srv, &fakeInfo{w: w})
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
	})
	return conn
}
