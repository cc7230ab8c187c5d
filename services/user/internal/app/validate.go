package app

import (
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/merchshop/merchshop/pkg/username"
)

const (
	// maxPasswordBytes is bcrypt's input limit: longer passwords would be
	// silently truncated, so they are refused instead.
	maxPasswordBytes = 72
	maxItemRunes     = 64
)

// NormalizeUsername returns the form in which name is stored and looked up
// (pkg/username.Normalize: NFC, 1 to 64 printable characters without
// spaces). Every name registered before the stricter rule passes it, so a
// stored name that ValidateNewUsername would refuse still logs in.
func NormalizeUsername(name string) (string, error) {
	n, err := username.Normalize(name)
	if err != nil {
		return "", usernameError{err}
	}
	return n, nil
}

// ValidateNewUsername is the rule for registering a name (already
// normalised): pkg/username.Validate (RFC 8265 UsernameCasePreserved, no
// spoofing mixes of scripts). It runs before anything is written.
func ValidateNewUsername(name string) error {
	if _, err := username.Validate(name); err != nil {
		return usernameError{err}
	}
	return nil
}

// usernameError is a refused name: it matches ErrInvalidUsername (the
// transport's InvalidArgument) and carries the message of the rule broken.
type usernameError struct{ rule error }

func (e usernameError) Error() string   { return e.rule.Error() }
func (e usernameError) Unwrap() []error { return []error{ErrInvalidUsername, e.rule} }

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
