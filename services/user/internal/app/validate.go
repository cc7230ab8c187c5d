package app

import (
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

const (
	maxUsernameRunes = 64
	// maxPasswordBytes is bcrypt's input limit: longer passwords would be
	// silently truncated, so they are refused instead.
	maxPasswordBytes = 72
	maxItemRunes     = 64
)

// ValidateUsername accepts 1 to 64 printable characters without whitespace.
func ValidateUsername(name string) error {
	if !token(name, maxUsernameRunes) {
		return ErrInvalidUsername
	}
	return nil
}

// ValidatePassword accepts 1 to 72 bytes of printable characters (spaces
// included).
func ValidatePassword(pw string) error {
	if pw == "" || len(pw) > maxPasswordBytes || !utf8.ValidString(pw) {
		return ErrInvalidPassword
	}
	for _, r := range pw {
		if !unicode.IsPrint(r) {
			return ErrInvalidPassword
		}
	}
	return nil
}

func validateItem(item string) error {
	if !token(item, maxItemRunes) {
		return ErrInvalidItem
	}
	return nil
}

// canonicalUUID returns id in the canonical lowercase hyphenated form, or
// false when it is not a UUID in that (any-case) form.
func canonicalUUID(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", false
	}
	return u.String(), true
}

// token reports whether s is 1..maxRunes printable non-space characters of
// valid UTF-8.
func token(s string, maxRunes int) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxRunes {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
