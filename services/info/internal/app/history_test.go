package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/events"
)

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{UnixMs: 1732406400123, TransactionID: uuid.NewString()}
	got, err := DecodeCursor(EncodeCursor(c))
	if err != nil || got != c {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	for _, bad := range []string{"!!!", enc([]byte("nocolon")), enc([]byte("12:")), enc([]byte("x:abc")), enc([]byte("-5:abc")), enc([]byte(":abc"))} {
		if _, err := DecodeCursor(bad); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("DecodeCursor(%q) = %v", bad, err)
		}
	}
}

// sliceReader pages over fixed entries, already newest first.
type sliceReader struct {
	entries []Entry
	limits  []int
}

func (r *sliceReader) Page(_ context.Context, _ string, after *Cursor, limit int) ([]Entry, error) {
	r.limits = append(r.limits, limit)
	var out []Entry
	for _, e := range r.entries {
		ms := e.CreatedAt.UnixMilli()
		if after != nil {
			older := ms < after.UnixMs || (ms == after.UnixMs && e.TransactionID < after.TransactionID)
			if !older {
				continue
			}
		}
		if len(out) == limit {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

func TestGetHistoryPaging(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	r := &sliceReader{}
	for i := 39; i >= 0; i-- { // exactly two pages of 20
		r.entries = append(r.entries, Entry{TransactionID: fmt.Sprintf("t%02d", i), CreatedAt: base.Add(time.Duration(i) * time.Millisecond)})
	}
	svc := New(nil, nil, r)
	user := uuid.NewString()
	p1, err := svc.GetHistory(context.Background(), user, "", 0)
	if err != nil || len(p1.Entries) != 20 || p1.NextCursor == "" {
		t.Fatalf("page 1 = %d entries, cursor %q, %v", len(p1.Entries), p1.NextCursor, err)
	}
	if r.limits[0] != 21 {
		t.Fatalf("asked the store for %d, want limit+1", r.limits[0])
	}
	p2, err := svc.GetHistory(context.Background(), user, p1.NextCursor, 20)
	if err != nil || len(p2.Entries) != 20 || p2.NextCursor != "" {
		t.Fatalf("page 2 = %d entries, cursor %q, %v", len(p2.Entries), p2.NextCursor, err)
	}
	if p2.Entries[0].TransactionID != "t19" || p2.Entries[19].TransactionID != "t00" {
		t.Fatalf("page 2 = %v ... %v", p2.Entries[0], p2.Entries[19])
	}
}

func TestGetHistoryValidation(t *testing.T) {
	svc := New(nil, nil, &sliceReader{})
	user := uuid.NewString()
	for _, limit := range []int{-1, 101, 1000} {
		if _, err := svc.GetHistory(context.Background(), user, "", limit); !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("limit %d: %v", limit, err)
		}
	}
	if _, err := svc.GetHistory(context.Background(), user, "garbage!", 10); !errors.Is(err, ErrInvalidCursor) {
		t.Errorf("bad cursor: %v", err)
	}
	if _, err := svc.GetHistory(context.Background(), "x", "", 10); !errors.Is(err, ErrInvalidUserID) {
		t.Errorf("bad user: %v", err)
	}
	p, err := svc.GetHistory(context.Background(), user, "", 100)
	if err != nil || p.Entries == nil || len(p.Entries) != 0 || p.NextCursor != "" {
		t.Fatalf("empty history = %+v, %v", p, err)
	}
}

func TestEntriesFromTransaction(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 123_456_789, time.UTC)
	alice, bob := uuid.NewString(), uuid.NewString()
	got, err := EntriesFromTransaction(events.Transaction{
		TransactionID: "t1", Kind: events.KindTransfer, FromUserID: alice, FromUsername: "alice",
		ToUserID: bob, ToUsername: "bob", Amount: 30, CreatedAt: at,
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("transfer = %v, %v", got, err)
	}
	wantAt := at.Truncate(time.Millisecond)
	if got[0] != (Entry{alice, "t1", KindTransferOut, "bob", -30, wantAt}) ||
		got[1] != (Entry{bob, "t1", KindTransferIn, "alice", 30, wantAt}) {
		t.Fatalf("transfer = %+v", got)
	}

	got, err = EntriesFromTransaction(events.Transaction{TransactionID: "t2", Kind: events.KindPurchase, FromUserID: alice, Amount: 80, Reason: "t-shirt", CreatedAt: at})
	if err != nil || len(got) != 1 || got[0].UserID != alice || got[0].Amount != -80 || got[0].Counterpart != "t-shirt" || got[0].Kind != KindPurchase {
		t.Fatalf("purchase = %+v, %v", got, err)
	}
	for _, kind := range []string{events.KindGrant, events.KindCredit} {
		got, err = EntriesFromTransaction(events.Transaction{TransactionID: "t3", Kind: kind, ToUserID: bob, Amount: 1000, Reason: "welcome", CreatedAt: at})
		if err != nil || len(got) != 1 || got[0].UserID != bob || got[0].Amount != 1000 || got[0].Kind != kind || got[0].Counterpart != "welcome" {
			t.Fatalf("%s = %+v, %v", kind, got, err)
		}
	}

	bad := []events.Transaction{
		{Kind: events.KindGrant, ToUserID: bob, Amount: 1, CreatedAt: at},
		{TransactionID: "x", Kind: events.KindGrant, ToUserID: bob, Amount: 0, CreatedAt: at},
		{TransactionID: "x", Kind: events.KindGrant, ToUserID: bob, Amount: 1},
		{TransactionID: "x", Kind: "gift", ToUserID: bob, Amount: 1, CreatedAt: at},
		{TransactionID: "x", Kind: events.KindTransfer, FromUserID: alice, Amount: 1, CreatedAt: at},
		{TransactionID: "x", Kind: events.KindTransfer, FromUserID: alice, ToUserID: alice, Amount: 1, CreatedAt: at},
		{TransactionID: "x", Kind: events.KindPurchase, ToUserID: bob, Amount: 1, CreatedAt: at},
		{TransactionID: "x", Kind: events.KindCredit, FromUserID: bob, Amount: 1, CreatedAt: at},
	}
	for i, tx := range bad {
		if _, err := EntriesFromTransaction(tx); !errors.Is(err, ErrMalformedEvent) {
			t.Errorf("bad[%d] = %v", i, err)
		}
	}
}
