package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/merchshop/merchshop/pkg/username"
)

func TestNormalizeUsername(t *testing.T) {
	cases := []struct {
		name, in, want string
		ok             bool
	}{
		{"simple", "alice", "alice", true},
		{"punctuation", "a.b-c_d@e", "a.b-c_d@e", true},
		{"one char", "x", "x", true},
		{"64 runes", strings.Repeat("я", 64), strings.Repeat("я", 64), true},
		{"65 runes", strings.Repeat("я", 65), "", false},
		{"64 ascii", strings.Repeat("a", 64), strings.Repeat("a", 64), true},
		{"decomposed é", "Rene\u0301e", "Ren\u00e9e", true},
		{"64 decomposed é", strings.Repeat("e\u0301", 64), strings.Repeat("\u00e9", 64), true},
		// Accepted before; ValidateNewUsername refuses them, lookups do not.
		{"emoji", "🙂user", "🙂user", true},
		{"mixed scripts", "\u0430lice", "\u0430lice", true},
		{"empty", "", "", false},
		{"space", "al ice", "", false},
		{"leading space", " alice", "", false},
		{"tab", "al\tice", "", false},
		{"newline", "alice\n", "", false},
		{"no-break space", "al\u00a0ice", "", false},
		{"control", "al\x01ice", "", false},
		{"invalid utf8", "al\xffice", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := NormalizeUsername(c.in)
			if c.ok && (err != nil || got != c.want) {
				t.Fatalf("NormalizeUsername(%q) = %q, %v, want %q", c.in, got, err, c.want)
			}
			if !c.ok && !errors.Is(err, ErrInvalidUsername) {
				t.Fatalf("NormalizeUsername(%q) = %v, want ErrInvalidUsername", c.in, err)
			}
		})
	}
}

func TestValidateNewUsername(t *testing.T) {
	for _, ok := range []string{"alice", "Алексей", "山田やまだ", "김철수", "Σωκράτης", "محمد", "Ren\u00e9e"} {
		if err := ValidateNewUsername(ok); err != nil {
			t.Errorf("ValidateNewUsername(%q) = %v", ok, err)
		}
	}
	for in, rule := range map[string]error{
		"\u0430lice":  username.ErrMixedScripts,
		"🙂user":       username.ErrDisallowed,
		"\uff41lice":  username.ErrWidth,
		"a b":         username.ErrSpace,
		"":            username.ErrRequired,
		"\u0301alice": username.ErrMarks,
	} {
		err := ValidateNewUsername(in)
		if !errors.Is(err, ErrInvalidUsername) || !errors.Is(err, rule) {
			t.Errorf("ValidateNewUsername(%q) = %v, want ErrInvalidUsername and %v", in, err, rule)
			continue
		}
		// The client sees the rule, not the generic sentinel.
		if !strings.HasPrefix(err.Error(), rule.Error()) {
			t.Errorf("ValidateNewUsername(%q): message %q does not name the rule", in, err)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"simple", "secret", true},
		{"with spaces", "correct horse battery staple", true},
		{"72 bytes", strings.Repeat("p", 72), true},
		{"73 bytes", strings.Repeat("p", 73), false},
		{"36 two-byte runes", strings.Repeat("я", 36), true},
		{"37 two-byte runes (74 bytes)", strings.Repeat("я", 37), false},
		{"empty", "", false},
		{"newline", "secret\n", false},
		{"nul", "sec\x00ret", false},
		{"invalid utf8", "sec\xffret", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidatePassword(c.in)
			if c.ok && err != nil {
				t.Fatalf("ValidatePassword(%q) = %v, want ok", c.in, err)
			}
			if !c.ok && !errors.Is(err, ErrInvalidPassword) {
				t.Fatalf("ValidatePassword(%q) = %v, want ErrInvalidPassword", c.in, err)
			}
		})
	}
	if ErrInvalidPassword.Error() != "password must be 1 to 72 printable characters" {
		t.Fatalf("message changed: %q", ErrInvalidPassword)
	}
}

func TestCanonicalUUID(t *testing.T) {
	cases := map[string]string{
		"6F9619FF-8B86-D011-B42D-00C04FC964FF":          "6f9619ff-8b86-d011-b42d-00c04fc964ff",
		"6f9619ff-8b86-d011-b42d-00c04fc964ff":          "6f9619ff-8b86-d011-b42d-00c04fc964ff",
		"{6f9619ff-8b86-d011-b42d-00c04fc964ff}":        "",
		"urn:uuid:6f9619ff-8b86-d011-b42d-00c04fc964ff": "",
		"6f9619ff8b86d011b42d00c04fc964ff":              "",
		"":                                              "",
		"not-a-uuid":                                    "",
	}
	for in, want := range cases {
		got, ok := canonicalUUID(in)
		if got != want || ok != (want != "") {
			t.Errorf("canonicalUUID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
