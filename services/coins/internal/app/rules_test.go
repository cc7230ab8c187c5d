package app

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateAmount(t *testing.T) {
	cases := []struct {
		coins int64
		want  error
	}{
		{-5, ErrAmountTooSmall},
		{0, ErrAmountTooSmall},
		{1, nil},
		{MaxAmount, nil},
		{MaxAmount + 1, ErrAmountTooLarge},
		{1 << 62, ErrAmountTooLarge},
	}
	for _, c := range cases {
		if got := ValidateAmount(c.coins); !errors.Is(got, c.want) || (c.want == nil && got != nil) {
			t.Errorf("ValidateAmount(%d) = %v, want %v", c.coins, got, c.want)
		}
	}
	if ErrAmountTooSmall.Error() != "amount must be at least 1" || ErrAmountTooLarge.Error() != "amount is too large" {
		t.Errorf("messages changed: %q, %q", ErrAmountTooSmall, ErrAmountTooLarge)
	}
}

func TestAmountConversion(t *testing.T) {
	if got := ToMinor(1); got != 100 {
		t.Errorf("ToMinor(1) = %d", got)
	}
	if got := ToMinor(MaxAmount); got != 100_000_000_000 {
		t.Errorf("ToMinor(max) = %d", got)
	}
	for _, c := range []struct{ minor, coins int64 }{{0, 0}, {99, 0}, {100, 1}, {100_000, 1000}, {12_345, 123}} {
		if got := ToCoins(c.minor); got != c.coins {
			t.Errorf("ToCoins(%d) = %d, want %d", c.minor, got, c.coins)
		}
	}
	for _, coins := range []int64{1, 7, 1000, MaxAmount} {
		if ToCoins(ToMinor(coins)) != coins {
			t.Errorf("round trip of %d", coins)
		}
	}
}

func TestValidateKey(t *testing.T) {
	cases := []struct {
		key  string
		want error
	}{
		{"", ErrKeyRequired},
		{"k", nil},
		{"a key with spaces", nil},
		{"ключ-идемпотентности", nil},
		{strings.Repeat("x", MaxKeyLen), nil},
		{strings.Repeat("я", MaxKeyLen), nil}, // 200 characters, 400 bytes
		{strings.Repeat("x", MaxKeyLen+1), ErrKeyTooLong},
		{"nul\x00byte", ErrKeyInvalid},
		{"bad\xffutf8", ErrKeyInvalid},
		{"tab\there", ErrKeyInvalid},
	}
	for _, c := range cases {
		got := ValidateKey(c.key)
		if c.want == nil && got != nil || c.want != nil && !errors.Is(got, c.want) {
			t.Errorf("ValidateKey(%q) = %v, want %v", c.key, got, c.want)
		}
	}
}

func TestValidUsername(t *testing.T) {
	good := []string{
		"a", "alice", "Боб", "user_1-x.y", strings.Repeat("z", 64), strings.Repeat("я", 64), "Ren\u00e9e",
		// Refused for new names by the user service, but an account may
		// hold one from before: it must still open and receive coins.
		"\u0430lice", "party\U0001f389",
	}
	bad := []string{
		"", " ", "a b", "tab\t", strings.Repeat("z", 65), "nul\x00", "\xff", "new\nline",
		"Rene\u0301e", // not in NFC: callers normalise first
	}
	for _, n := range good {
		if !ValidUsername(n) {
			t.Errorf("ValidUsername(%q) = false", n)
		}
	}
	for _, n := range bad {
		if ValidUsername(n) {
			t.Errorf("ValidUsername(%q) = true", n)
		}
	}
}

func TestParseUserID(t *testing.T) {
	if _, err := ParseUserID("6f1d8a3e-0c1b-4b5e-9a38-2b4c5d6e7f80"); err != nil {
		t.Errorf("valid id refused: %v", err)
	}
	for _, s := range []string{"", "x", "00000000-0000-0000-0000-000000000000", "6f1d8a3e-0c1b-4b5e-9a38"} {
		if _, err := ParseUserID(s); !errors.Is(err, ErrInvalidUserID) {
			t.Errorf("ParseUserID(%q) = %v", s, err)
		}
	}
}

func TestValidateReason(t *testing.T) {
	if err := ValidateReason(""); err != nil {
		t.Error(err)
	}
	if err := ValidateReason("t-shirt"); err != nil {
		t.Error(err)
	}
	if err := ValidateReason(strings.Repeat("r", MaxReasonLen+1)); !errors.Is(err, ErrReasonInvalid) {
		t.Errorf("long reason: %v", err)
	}
	if err := ValidateReason("x\x00"); !errors.Is(err, ErrReasonInvalid) {
		t.Errorf("nul reason: %v", err)
	}
}

func TestRequestHash(t *testing.T) {
	base := requestHash("transfer", "a", "b", 100)
	if base != requestHash("transfer", "a", "b", 100) {
		t.Fatal("hash is not deterministic")
	}
	for _, other := range []string{
		requestHash("transfer", "a", "b", 200),
		requestHash("transfer", "a", "c", 100),
		requestHash("purchase", "a", "b", 100),
		requestHash("transfer", "ab", "", 100), // field boundaries matter
	} {
		if other == base {
			t.Error("different requests share a hash")
		}
	}
}

func TestKindOf(t *testing.T) {
	if KindOf(ErrInsufficientFunds) != KindFailedPrecondition {
		t.Error("kind of insufficient funds")
	}
	wrapped := errors.Join(errors.New("x"), ErrBusy)
	if KindOf(wrapped) != KindBusy {
		t.Error("kind through a wrap")
	}
	if KindOf(errors.New("plain")) != 0 {
		t.Error("plain error has a kind")
	}
}
