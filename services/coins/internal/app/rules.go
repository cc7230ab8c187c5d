package app

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/username"
)

// Money rules. The API speaks whole coins; the ledger stores minor units.
const (
	// MinorPerCoin is the number of minor units in one coin.
	MinorPerCoin = 100
	// WelcomeGrant is what a new account starts with, in coins.
	WelcomeGrant = 1000
	// MaxAmount bounds one movement, in coins (so that amounts in minor
	// units and sums of them stay far from int64 overflow).
	MaxAmount = 1_000_000_000
	// MaxKeyLen bounds a caller's idempotency key, in characters.
	MaxKeyLen = 200
	// MaxReasonLen bounds the free-text reason of a charge or credit.
	MaxReasonLen = 200
	// MaxUsernameLen bounds a username, in characters.
	MaxUsernameLen = username.MaxLen
)

// ToMinor converts a validated amount in coins to minor units.
func ToMinor(coins int64) int64 { return coins * MinorPerCoin }

// ToCoins converts minor units to whole coins, rounding down (balances only
// ever move by whole coins through this API, so nothing is lost).
func ToCoins(minor int64) int64 { return minor / MinorPerCoin }

// ValidateAmount checks an amount in coins.
func ValidateAmount(coins int64) error {
	switch {
	case coins < 1:
		return ErrAmountTooSmall
	case coins > MaxAmount:
		return ErrAmountTooLarge
	}
	return nil
}

// ParseUserID parses a user id (a UUID).
func ParseUserID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, ErrInvalidUserID
	}
	return id, nil
}

// ValidUsername reports whether name is a username in the form it is
// stored and looked up in (pkg/username.Normalize: NFC, 1 to 64 printable
// characters without spaces). The callers (auth's OpenAccount, the
// gateway's transfer recipient) normalise names before they get here; the
// stricter rule for new names is the user service's, at registration, so
// an account whose name predates it still opens and receives coins.
func ValidUsername(name string) bool {
	n, err := username.Normalize(name)
	return err == nil && n == name
}

// ValidateKey checks a caller's idempotency key: required, at most 200
// characters of printable text (PostgreSQL TEXT refuses NUL and invalid
// UTF-8, which must be bad input, not an internal error).
func ValidateKey(key string) error {
	if key == "" {
		return ErrKeyRequired
	}
	if !printable(key) {
		return ErrKeyInvalid
	}
	if utf8.RuneCountInString(key) > MaxKeyLen {
		return ErrKeyTooLong
	}
	return nil
}

// ValidateReason checks the optional reason of a charge or credit.
func ValidateReason(reason string) error {
	if reason != "" && (!printable(reason) || utf8.RuneCountInString(reason) > MaxReasonLen) {
		return ErrReasonInvalid
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0
}

// requestHash fingerprints what a request asks for, so that a key reused
// for a different request is told apart from a replay. The reason is left
// out: it describes the movement, it does not change it.
func requestHash(kind, from, to string, amountMinor int64) string {
	h := sha256.New()
	for _, part := range []string{kind, from, to, strconv.FormatInt(amountMinor, 10)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
