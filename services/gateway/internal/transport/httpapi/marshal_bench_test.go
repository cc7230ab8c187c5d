package httpapi_test

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	shopv1 "github.com/merchshop/merchshop/gen/shop/v1"
	"github.com/merchshop/merchshop/services/gateway/internal/transport/httpapi"
)

// infoResponse is a GET /api/info answer with items inventory lines and
// counterparts lines of history each way.
func infoResponse(items, counterparts int) *shopv1.InfoResponse {
	r := &shopv1.InfoResponse{Coins: 873, CoinHistory: &shopv1.CoinHistory{}}
	names := []string{"t-shirt", "cup", "book", "pen", "powerbank", "hoody", "umbrella", "socks", "wallet", "pink-hoody"}
	for i := range items {
		r.Inventory = append(r.Inventory, &shopv1.InventoryItem{Type: names[i%len(names)], Quantity: int32(i + 1)})
	}
	for i := range counterparts {
		r.CoinHistory.Received = append(r.CoinHistory.Received, &shopv1.Received{FromUser: fmt.Sprintf("load-%06d", i), Amount: int32(i + 1)})
		r.CoinHistory.Sent = append(r.CoinHistory.Sent, &shopv1.Sent{ToUser: fmt.Sprintf("load-%06d", 50_000+i), Amount: int32(2 * (i + 1))})
	}
	return r
}

var infoSizes = []struct {
	name                string
	items, counterparts int
}{
	{"empty", 0, 0},   // a new user: {"coins":1000,"inventory":[],"coinHistory":{...}}
	{"typical", 2, 3}, // what the mixed load profile's users look like
	{"large", 10, 100},
}

// BenchmarkMarshalInfo is the gateway's JSON encoding of the info answer:
// protojson, then compaction (protojson adds random spaces on purpose).
func BenchmarkMarshalInfo(b *testing.B) {
	m := httpapi.NewMarshaler()
	for _, sz := range infoSizes {
		b.Run(sz.name, func(b *testing.B) {
			resp := infoResponse(sz.items, sz.counterparts)
			out, err := m.Marshal(resp)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(out)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Marshal(resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMarshalInfoProtojsonOnly is protojson alone with the same
// options, to show what the compaction pass costs.
func BenchmarkMarshalInfoProtojsonOnly(b *testing.B) {
	opts := protojson.MarshalOptions{EmitUnpopulated: true}
	for _, sz := range infoSizes {
		b.Run(sz.name, func(b *testing.B) {
			resp := infoResponse(sz.items, sz.counterparts)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := opts.Marshal(resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
