package app

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	infov1 "github.com/merchshop/merchshop/gen/info/v1"
	shopv1 "github.com/merchshop/merchshop/gen/shop/v1"
	"github.com/merchshop/merchshop/pkg/identity"
	"github.com/merchshop/merchshop/pkg/viewcache"
)

type fakeInfo struct {
	InfoBackend
	calls int
	resp  *infov1.GetInfoResponse
}

func (f *fakeInfo) GetInfo(context.Context, *infov1.GetInfoRequest, ...grpc.CallOption) (*infov1.GetInfoResponse, error) {
	f.calls++
	return f.resp, nil
}

// fakeViewCache answers Get with res (and view when a Hit) and records Puts.
type fakeViewCache struct {
	view   []byte
	res    viewcache.Result
	getErr error
	puts   int
}

func (f *fakeViewCache) Get(context.Context, string) ([]byte, viewcache.Result, viewcache.Stamp, error) {
	return f.view, f.res, viewcache.Stamp{}, f.getErr
}

func (f *fakeViewCache) Put(_ context.Context, _ string, st viewcache.Stamp, _ []byte) (bool, error) {
	if st.Cacheable() {
		f.puts++
	}
	return st.Cacheable(), nil
}

func TestGetInfoFromTheViewCache(t *testing.T) {
	ctx := identity.WithCaller(context.Background(), identity.Caller{UserID: "7b3f0c1e-0000-4000-8000-000000000001", Username: "alice"})
	fromInfo := &infov1.GetInfoResponse{Coins: 990, Inventory: []*infov1.InventoryItem{{Item: "pen", Quantity: 1}}}
	cached, err := proto.Marshal(&infov1.GetInfoResponse{Coins: 500})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		cache     *fakeViewCache
		wantCoins int32
		wantCalls int
		outcome   string
	}{
		{"hit answers without info", &fakeViewCache{view: cached, res: viewcache.Hit}, 500, 0, "hit"},
		{"miss asks info", &fakeViewCache{res: viewcache.Miss}, 990, 1, "miss"},
		{"busy asks info", &fakeViewCache{res: viewcache.Busy}, 990, 1, "busy"},
		{"cache error asks info", &fakeViewCache{getErr: errors.New("down")}, 990, 1, "error"},
		{"undecodable view asks info", &fakeViewCache{view: []byte{0xff, 0xff}, res: viewcache.Hit}, 990, 1, "miss"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := &fakeInfo{resp: fromInfo}
			var seen []string
			s := New(Backends{Info: info}, slog.New(slog.DiscardHandler)).WithViews(tc.cache, func(o string) { seen = append(seen, o) })
			out, err := s.GetInfo(ctx, &shopv1.GetInfoRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if out.GetCoins() != tc.wantCoins || info.calls != tc.wantCalls {
				t.Fatalf("coins %d after %d info calls, want %d after %d", out.GetCoins(), info.calls, tc.wantCoins, tc.wantCalls)
			}
			if len(seen) == 0 || seen[0] != tc.outcome {
				t.Fatalf("outcomes %v, want %s first", seen, tc.outcome)
			}
			if out.GetCoinHistory() == nil || out.GetInventory() == nil {
				t.Fatal("lists must be present, never null")
			}
		})
	}
}
