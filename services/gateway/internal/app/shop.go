// Package app implements the public ShopService by calling the backends over
// gRPC. The HTTP layer (grpc-gateway, registered in-process) decodes requests
// into the public messages and calls Shop; Shop validates what the edge can,
// calls the backends with the caller's identity in the outgoing metadata and
// shapes the answers. Backend errors are gRPC statuses and pass through as
// they are: the HTTP layer maps codes to HTTP statuses in one place.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/merchshop/merchshop/gen/auth/v1"
	coinsv1 "github.com/merchshop/merchshop/gen/coins/v1"
	infov1 "github.com/merchshop/merchshop/gen/info/v1"
	merchv1 "github.com/merchshop/merchshop/gen/merch/v1"
	shopv1 "github.com/merchshop/merchshop/gen/shop/v1"
	"github.com/merchshop/merchshop/pkg/identity"
	"github.com/merchshop/merchshop/pkg/username"
	"github.com/merchshop/merchshop/pkg/viewcache"
)

// AuthBackend is what Shop uses of the auth service.
type AuthBackend interface {
	Login(ctx context.Context, in *authv1.LoginRequest, opts ...grpc.CallOption) (*authv1.Session, error)
	Refresh(ctx context.Context, in *authv1.RefreshRequest, opts ...grpc.CallOption) (*authv1.Session, error)
	Logout(ctx context.Context, in *authv1.LogoutRequest, opts ...grpc.CallOption) (*authv1.LogoutResponse, error)
}

// CoinsBackend is what Shop uses of the coins service.
type CoinsBackend interface {
	Transfer(ctx context.Context, in *coinsv1.TransferRequest, opts ...grpc.CallOption) (*coinsv1.TransactionResponse, error)
}

// MerchBackend is what Shop uses of the merch service.
type MerchBackend interface {
	ListItems(ctx context.Context, in *merchv1.ListItemsRequest, opts ...grpc.CallOption) (*merchv1.ListItemsResponse, error)
	Buy(ctx context.Context, in *merchv1.BuyRequest, opts ...grpc.CallOption) (*merchv1.BuyResponse, error)
}

// InfoBackend is what Shop uses of the info service.
type InfoBackend interface {
	GetInfo(ctx context.Context, in *infov1.GetInfoRequest, opts ...grpc.CallOption) (*infov1.GetInfoResponse, error)
	GetHistory(ctx context.Context, in *infov1.GetHistoryRequest, opts ...grpc.CallOption) (*infov1.GetHistoryResponse, error)
}

// Backends are the services Shop calls.
type Backends struct {
	Auth  AuthBackend
	Coins CoinsBackend
	Merch MerchBackend
	Info  InfoBackend
}

// StatusCompleted is the status of a finished legacy transaction.
const StatusCompleted = "COMPLETED"

// Maximum lengths checked at the edge before calling a backend.
const (
	maxPasswordLen = 256
	maxItemLen     = 64
	maxHistoryPage = 100
)

// Shop implements shopv1.ShopServiceServer.
type Shop struct {
	shopv1.UnimplementedShopServiceServer

	b   Backends
	log *slog.Logger
	now func() time.Time

	views       ViewCache
	observeView func(outcome string)
}

var _ shopv1.ShopServiceServer = (*Shop)(nil)

// New returns a Shop calling b.
func New(b Backends, log *slog.Logger) *Shop {
	return &Shop{b: b, log: log, now: time.Now}
}

// Auth logs in (registering the user on the first call) and hands the
// refresh token to the HTTP layer through the response header metadata.
func (s *Shop) Auth(ctx context.Context, req *shopv1.AuthRequest) (*shopv1.AuthResponse, error) {
	// The name in its one stored form (pkg/username.Normalize: NFC), so
	// that the composed and decomposed "é" are one user; what is never a
	// name is refused here with the rule it breaks. Whether a new name may
	// be registered is the user service's rule.
	name, err := username.Normalize(req.GetUsername())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetPassword() == "" {
		return nil, status.Error(codes.InvalidArgument, "password is required")
	}
	// Bound what reaches the backends (bcrypt reads at most 72 bytes anyway).
	if len(req.GetPassword()) > maxPasswordLen {
		return nil, status.Errorf(codes.InvalidArgument, "password must be at most %d characters", maxPasswordLen)
	}
	sess, err := s.b.Auth.Login(ctx, &authv1.LoginRequest{
		Username:  name,
		Password:  req.GetPassword(),
		UserAgent: UserAgent(ctx),
	})
	if err != nil {
		return nil, err
	}
	if err := setSession(ctx, sess.GetRefreshToken(), sess.GetRefreshExpiresAt()); err != nil {
		return nil, err
	}
	return &shopv1.AuthResponse{Token: sess.GetAccessToken()}, nil
}

// Refresh rotates the refresh token of the cookie. A rejected token clears
// the cookie.
func (s *Shop) Refresh(ctx context.Context, _ *shopv1.RefreshRequest) (*shopv1.AuthResponse, error) {
	token := RefreshToken(ctx)
	if token == "" {
		return nil, status.Error(codes.Unauthenticated, "missing refresh token")
	}
	sess, err := s.b.Auth.Refresh(ctx, &authv1.RefreshRequest{RefreshToken: token, UserAgent: UserAgent(ctx)})
	if err != nil {
		if c := status.Code(err); c == codes.Unauthenticated || c == codes.InvalidArgument || c == codes.NotFound {
			_ = clearSession(ctx)
			if c != codes.Unauthenticated {
				return nil, status.Error(codes.Unauthenticated, "invalid refresh token")
			}
		}
		return nil, err
	}
	if err := setSession(ctx, sess.GetRefreshToken(), sess.GetRefreshExpiresAt()); err != nil {
		return nil, err
	}
	return &shopv1.AuthResponse{Token: sess.GetAccessToken()}, nil
}

// Logout ends the session of the refresh cookie and clears the cookie. It
// succeeds when there is no session to end.
func (s *Shop) Logout(ctx context.Context, _ *shopv1.LogoutRequest) (*shopv1.LogoutResponse, error) {
	if token := RefreshToken(ctx); token != "" {
		_, err := s.b.Auth.Logout(ctx, &authv1.LogoutRequest{RefreshToken: token})
		switch status.Code(err) {
		case codes.OK, codes.Unauthenticated, codes.NotFound, codes.InvalidArgument:
		default:
			return nil, err
		}
	}
	if err := clearSession(ctx); err != nil {
		return nil, err
	}
	return &shopv1.LogoutResponse{}, nil
}

// ViewCache holds the users' info views (pkg/viewcache.Reader): Get
// answers a view only while no write could have changed it; Put stores a
// view read after the Get that gave the stamp, unless a write began since.
type ViewCache interface {
	Get(ctx context.Context, userID string) ([]byte, viewcache.Result, viewcache.Stamp, error)
	Put(ctx context.Context, userID string, st viewcache.Stamp, view []byte) (bool, error)
}

// WithViews has GetInfo answer from views when it can; observe (may be nil)
// is told each lookup's outcome: hit, miss, busy, stored, error.
func (s *Shop) WithViews(views ViewCache, observe func(outcome string)) *Shop {
	if observe == nil {
		observe = func(string) {}
	}
	s.views, s.observeView = views, observe
	return s
}

// GetInfo returns the caller's balance, inventory and grouped history:
// from the view cache when the caller's view there is current, otherwise
// from info (and then into the cache).
func (s *Shop) GetInfo(ctx context.Context, _ *shopv1.GetInfoRequest) (*shopv1.InfoResponse, error) {
	caller, err := authenticated(ctx)
	if err != nil {
		return nil, err
	}
	if s.views == nil {
		in, err := s.b.Info.GetInfo(ctx, &infov1.GetInfoRequest{UserId: caller.UserID})
		if err != nil {
			return nil, err
		}
		return s.infoResponse(in)
	}
	view, res, st, verr := s.views.Get(ctx, caller.UserID)
	if verr == nil && res == viewcache.Hit {
		in := &infov1.GetInfoResponse{}
		if err := proto.Unmarshal(view, in); err == nil {
			s.observeView("hit")
			return s.infoResponse(in)
		}
		s.log.WarnContext(ctx, "view cache: undecodable view, reading it again", "error", err)
	}
	switch {
	case verr != nil:
		s.observeView("error")
		s.log.DebugContext(ctx, "view cache get", "error", verr)
	case res == viewcache.Busy:
		s.observeView("busy")
	default:
		s.observeView("miss")
	}
	in, err := s.b.Info.GetInfo(ctx, &infov1.GetInfoRequest{UserId: caller.UserID})
	if err != nil {
		return nil, err
	}
	if verr == nil && st.Cacheable() {
		if b, err := proto.Marshal(in); err == nil {
			if ok, err := s.views.Put(ctx, caller.UserID, st, b); err != nil {
				s.observeView("error")
				s.log.DebugContext(ctx, "view cache put", "error", err)
			} else if ok {
				s.observeView("stored")
			}
		}
	}
	return s.infoResponse(in)
}

// infoResponse shapes info's answer into the public one.
func (s *Shop) infoResponse(in *infov1.GetInfoResponse) (*shopv1.InfoResponse, error) {
	coins, err := s.toInt32("coins", in.GetCoins())
	if err != nil {
		return nil, err
	}
	out := &shopv1.InfoResponse{
		Coins:     coins,
		Inventory: make([]*shopv1.InventoryItem, 0, len(in.GetInventory())),
		CoinHistory: &shopv1.CoinHistory{
			Received: make([]*shopv1.Received, 0, len(in.GetReceived())),
			Sent:     make([]*shopv1.Sent, 0, len(in.GetSent())),
		},
	}
	for _, it := range in.GetInventory() {
		q, err := s.toInt32("quantity", it.GetQuantity())
		if err != nil {
			return nil, err
		}
		out.Inventory = append(out.Inventory, &shopv1.InventoryItem{Type: it.GetItem(), Quantity: q})
	}
	for _, r := range in.GetReceived() {
		a, err := s.toInt32("amount", r.GetAmount())
		if err != nil {
			return nil, err
		}
		out.CoinHistory.Received = append(out.CoinHistory.Received, &shopv1.Received{FromUser: r.GetUsername(), Amount: a})
	}
	for _, r := range in.GetSent() {
		a, err := s.toInt32("amount", r.GetAmount())
		if err != nil {
			return nil, err
		}
		out.CoinHistory.Sent = append(out.CoinHistory.Sent, &shopv1.Sent{ToUser: r.GetUsername(), Amount: a})
	}
	return out, nil
}

// SendCoin transfers coins from the caller to another user.
func (s *Shop) SendCoin(ctx context.Context, req *shopv1.SendCoinRequest) (*shopv1.SendCoinResponse, error) {
	if _, err := s.transfer(ctx, "toUser", req.GetToUser(), req.GetAmount()); err != nil {
		return nil, err
	}
	return &shopv1.SendCoinResponse{}, nil
}

// LegacySendCoins is SendCoin under the route and shape of the old system.
func (s *Shop) LegacySendCoins(ctx context.Context, req *shopv1.LegacySendCoinsRequest) (*shopv1.LegacyTransactionResponse, error) {
	id, err := s.transfer(ctx, "to_user", req.GetToUser(), req.GetAmount())
	if err != nil {
		return nil, err
	}
	return &shopv1.LegacyTransactionResponse{TransactionId: id, Status: StatusCompleted}, nil
}

func (s *Shop) transfer(ctx context.Context, toField, to string, amount int32) (string, error) {
	caller, err := authenticated(ctx)
	if err != nil {
		return "", err
	}
	if amount < 1 {
		return "", status.Error(codes.InvalidArgument, "amount must be at least 1")
	}
	if strings.TrimSpace(to) == "" {
		return "", status.Errorf(codes.InvalidArgument, "%s is required", toField)
	}
	// The recipient in its stored form (NFC), so that any spelling of a
	// name reaches its one user; lookups apply no stricter rule, so a name
	// registered before pkg/username.Validate existed still receives.
	toName, err := username.Normalize(to)
	if err != nil {
		return "", status.Errorf(codes.InvalidArgument, "%s: %v", toField, err)
	}
	resp, err := s.b.Coins.Transfer(ctx, &coinsv1.TransferRequest{
		FromUserId:     caller.UserID,
		ToUsername:     toName,
		Amount:         int64(amount),
		IdempotencyKey: IdempotencyKey(ctx),
	})
	if err != nil {
		return "", err
	}
	return resp.GetTransactionId(), nil
}

// Buy buys one item for the caller.
func (s *Shop) Buy(ctx context.Context, req *shopv1.BuyRequest) (*shopv1.BuyResponse, error) {
	if _, err := s.buy(ctx, req.GetItem()); err != nil {
		return nil, err
	}
	return &shopv1.BuyResponse{}, nil
}

// LegacyBuy is Buy under the route and shape of the old system.
func (s *Shop) LegacyBuy(ctx context.Context, req *shopv1.LegacyBuyRequest) (*shopv1.LegacyTransactionResponse, error) {
	resp, err := s.buy(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	st := resp.GetStatus()
	if st == "" {
		st = StatusCompleted
	}
	return &shopv1.LegacyTransactionResponse{TransactionId: resp.GetOrderId(), Status: st}, nil
}

func (s *Shop) buy(ctx context.Context, item string) (*merchv1.BuyResponse, error) {
	caller, err := authenticated(ctx)
	if err != nil {
		return nil, err
	}
	if item == "" {
		return nil, status.Error(codes.InvalidArgument, "item is required")
	}
	if len(item) > 4*maxItemLen || !utf8.ValidString(item) {
		return nil, status.Error(codes.InvalidArgument, "unknown item")
	}
	return s.b.Merch.Buy(ctx, &merchv1.BuyRequest{
		UserId:         caller.UserID,
		Item:           item,
		IdempotencyKey: IdempotencyKey(ctx),
	})
}

// ListMerch returns the catalog.
func (s *Shop) ListMerch(ctx context.Context, _ *shopv1.ListMerchRequest) (*shopv1.ListMerchResponse, error) {
	in, err := s.b.Merch.ListItems(ctx, &merchv1.ListItemsRequest{})
	if err != nil {
		return nil, err
	}
	out := &shopv1.ListMerchResponse{Items: make([]*shopv1.MerchItem, 0, len(in.GetItems()))}
	for _, it := range in.GetItems() {
		p, err := s.toInt32("price", it.GetPrice())
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, &shopv1.MerchItem{Name: it.GetName(), Price: p})
	}
	return out, nil
}

// GetHistory returns one page of the caller's itemised ledger.
func (s *Shop) GetHistory(ctx context.Context, req *shopv1.GetHistoryRequest) (*shopv1.GetHistoryResponse, error) {
	caller, err := authenticated(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetLimit() < 0 || req.GetLimit() > maxHistoryPage {
		return nil, status.Errorf(codes.InvalidArgument, "limit must be between 1 and %d", maxHistoryPage)
	}
	if len(req.GetCursor()) > 512 || !utf8.ValidString(req.GetCursor()) {
		return nil, status.Error(codes.InvalidArgument, "invalid cursor")
	}
	in, err := s.b.Info.GetHistory(ctx, &infov1.GetHistoryRequest{
		UserId: caller.UserID, Cursor: req.GetCursor(), Limit: req.GetLimit(),
	})
	if err != nil {
		return nil, err
	}
	out := &shopv1.GetHistoryResponse{
		Entries:    make([]*shopv1.HistoryEntry, 0, len(in.GetEntries())),
		NextCursor: in.GetNextCursor(),
	}
	for _, e := range in.GetEntries() {
		a, err := s.toInt32("amount", e.GetAmount())
		if err != nil {
			return nil, err
		}
		out.Entries = append(out.Entries, &shopv1.HistoryEntry{
			TransactionId: e.GetTransactionId(),
			Kind:          e.GetKind(),
			Counterpart:   e.GetCounterpart(),
			Amount:        a,
			Time:          FormatTime(e.GetTimeUnixMs()),
		})
	}
	return out, nil
}

// FormatTime renders unix milliseconds as RFC 3339 in UTC with milliseconds.
func FormatTime(unixMS int64) string {
	return time.UnixMilli(unixMS).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// toInt32 narrows a backend amount to the int32 of the public messages. A
// value out of range is a bug or corrupt data, never the client's fault.
func (s *Shop) toInt32(field string, v int64) (int32, error) {
	if v < math.MinInt32 || v > math.MaxInt32 {
		s.log.Error("backend value out of int32 range", "field", field, "value", v)
		return 0, status.Error(codes.Internal, "internal error")
	}
	return int32(v), nil
}

// authenticated returns the caller put in ctx by the HTTP layer. The
// backends learn whom a call is for from its request fields (user_id), not
// from metadata.
func authenticated(ctx context.Context) (identity.Caller, error) {
	c, ok := identity.FromContext(ctx)
	if !ok {
		return identity.Caller{}, status.Error(codes.Unauthenticated, "authentication required")
	}
	return c, nil
}

func setSession(ctx context.Context, refreshToken string, expiresAt int64) error {
	if err := grpc.SetHeader(ctx, sessionHeader(refreshToken, expiresAt)); err != nil {
		return fmt.Errorf("set session header: %w", err)
	}
	return nil
}

func clearSession(ctx context.Context) error {
	return setSession(ctx, "", 0)
}
