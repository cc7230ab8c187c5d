package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/events"
)

// History page sizes.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Cursor points at the last entry of a page: the next page starts strictly
// after it in (time, transaction id) descending order.
type Cursor struct {
	UnixMs        int64
	TransactionID string
}

// EncodeCursor returns the opaque form handed to clients: base64url of
// "<unix ms>:<transaction id>".
func EncodeCursor(c Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.UnixMs, 10) + ":" + c.TransactionID))
}

// DecodeCursor parses a cursor made by EncodeCursor.
func DecodeCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return Cursor{}, ErrInvalidCursor
	}
	ms, id, ok := strings.Cut(string(raw), ":")
	if !ok || id == "" || len(id) > 64 {
		return Cursor{}, ErrInvalidCursor
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n < 0 {
		return Cursor{}, ErrInvalidCursor
	}
	return Cursor{UnixMs: n, TransactionID: id}, nil
}

// HistoryPage is one page of the itemised history.
type HistoryPage struct {
	Entries []Entry
	// NextCursor is empty on the last page.
	NextCursor string
}

// GetHistory returns one page of the user's history, newest first. limit 0
// means DefaultLimit.
func (s *Service) GetHistory(ctx context.Context, userID, cursor string, limit int) (HistoryPage, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return HistoryPage{}, ErrInvalidUserID
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return HistoryPage{}, ErrInvalidLimit
	}
	var after *Cursor
	if cursor != "" {
		c, err := DecodeCursor(cursor)
		if err != nil {
			return HistoryPage{}, err
		}
		after = &c
	}
	// One more than asked tells whether another page exists.
	entries, err := s.history.Page(ctx, userID, after, limit+1)
	if err != nil {
		return HistoryPage{}, fmt.Errorf("%w: history: %w", ErrUnavailable, err)
	}
	page := HistoryPage{Entries: entries}
	if len(entries) > limit {
		page.Entries = entries[:limit]
		last := page.Entries[limit-1]
		page.NextCursor = EncodeCursor(Cursor{UnixMs: last.CreatedAt.UnixMilli(), TransactionID: last.TransactionID})
	}
	if page.Entries == nil {
		page.Entries = []Entry{}
	}
	return page, nil
}

// ErrMalformedEvent marks a transaction event that cannot be projected.
var ErrMalformedEvent = errors.New("malformed transaction event")

// EntriesFromTransaction projects one ledger transaction onto the history of
// every user it involves: a transfer gives the sender a transfer_out row
// (-amount, counterpart the recipient) and the recipient a transfer_in row
// (+amount, counterpart the sender); a purchase gives the buyer -amount with
// the item as counterpart; a grant or credit gives the receiver +amount with
// the reason as counterpart.
func EntriesFromTransaction(tx events.Transaction) ([]Entry, error) {
	if tx.TransactionID == "" || len(tx.TransactionID) > 64 {
		return nil, fmt.Errorf("%w: transaction id %q", ErrMalformedEvent, tx.TransactionID)
	}
	if tx.Amount <= 0 {
		return nil, fmt.Errorf("%w: amount %d", ErrMalformedEvent, tx.Amount)
	}
	if tx.CreatedAt.IsZero() {
		return nil, fmt.Errorf("%w: no created_at", ErrMalformedEvent)
	}
	at := tx.CreatedAt.UTC().Truncate(time.Millisecond)
	entry := func(user, kind, counterpart string, amount int64) Entry {
		return Entry{UserID: user, TransactionID: tx.TransactionID, Kind: kind, Counterpart: counterpart, Amount: amount, CreatedAt: at}
	}
	switch tx.Kind {
	case events.KindTransfer:
		if tx.FromUserID == "" || tx.ToUserID == "" || tx.FromUserID == tx.ToUserID {
			return nil, fmt.Errorf("%w: transfer %s from %q to %q", ErrMalformedEvent, tx.TransactionID, tx.FromUserID, tx.ToUserID)
		}
		return []Entry{
			entry(tx.FromUserID, KindTransferOut, tx.ToUsername, -tx.Amount),
			entry(tx.ToUserID, KindTransferIn, tx.FromUsername, tx.Amount),
		}, nil
	case events.KindPurchase:
		if tx.FromUserID == "" {
			return nil, fmt.Errorf("%w: purchase %s without buyer", ErrMalformedEvent, tx.TransactionID)
		}
		return []Entry{entry(tx.FromUserID, KindPurchase, tx.Reason, -tx.Amount)}, nil
	case events.KindGrant, events.KindCredit:
		if tx.ToUserID == "" {
			return nil, fmt.Errorf("%w: %s %s without receiver", ErrMalformedEvent, tx.Kind, tx.TransactionID)
		}
		return []Entry{entry(tx.ToUserID, tx.Kind, tx.Reason, tx.Amount)}, nil
	default:
		return nil, fmt.Errorf("%w: kind %q", ErrMalformedEvent, tx.Kind)
	}
}
