// Package username owns the rules for usernames, for every service that
// handles one.
//
// Two rules, one strict and one lenient:
//
//   - Normalize is the form in which a name is stored, looked up and
//     compared: Unicode NFC, so that the composed and the decomposed
//     spelling of "é" are one name. It refuses only what was never a name:
//     invalid UTF-8, nothing, more than MaxLen characters, spaces, control
//     and invisible characters. Every name registered before this package
//     existed passes it, so lookups (login of an existing user, the
//     recipient of a transfer) apply Normalize only.
//   - Validate is the rule for a new name: Normalize, then the PRECIS
//     UsernameCasePreserved profile of RFC 8265 (letters, digits, combining
//     marks and ASCII punctuation; no symbols or emoji; no fullwidth or
//     halfwidth forms; the Bidi Rule of RFC 5893), then the mixed-script
//     rules of Unicode TS #39 (no Latin with Cyrillic or Greek, as in
//     "аlice" with a Cyrillic "а"; Japanese and Korean mixes are one
//     script), one numbering system for digits and no stacked combining
//     marks.
//
// Lengths count characters (Unicode code points) of the normal form, not
// bytes. Every refusal is an *Error that matches ErrInvalid and the
// sentinel of its rule with errors.Is; its message names the rule and is
// safe to show to the client.
package username

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

const (
	// MaxLen is the most characters (code points of the NFC form) a name
	// may have.
	MaxLen = 64
	// MaxInputBytes bounds the input before any work is done on it. It
	// leaves room for a MaxLen name typed in decomposed form (a Hangul
	// syllable as three conjoining jamo is 9 bytes).
	MaxInputBytes = 1024
	// maxMarks is the longest run of nonspacing marks a new name may have
	// (TS #39, section 5.4).
	maxMarks = 4
)

// ErrInvalid matches every refusal of this package.
var ErrInvalid = errors.New("invalid username")

// The rules. A refusal matches exactly one of them (and ErrInvalid).
var (
	ErrRequired     = errors.New("username is required")
	ErrTooLong      = fmt.Errorf("username must be at most %d characters", MaxLen)
	ErrEncoding     = errors.New("username must be valid UTF-8")
	ErrSpace        = errors.New("username must not contain spaces")
	ErrInvisible    = errors.New("username must not contain control or invisible characters")
	ErrWidth        = errors.New("username must not use fullwidth or halfwidth forms")
	ErrDisallowed   = errors.New("username may contain only letters, digits, combining marks and ASCII punctuation")
	ErrDirection    = errors.New("username must not mix right-to-left and left-to-right text (RFC 5893 Bidi Rule)")
	ErrContext      = errors.New("username uses a character outside the context it is allowed in (RFC 5892 contextual rules)")
	ErrMixedScripts = errors.New("username must not mix scripts")
	ErrMixedDigits  = errors.New("username must not mix digits of different numbering systems")
	ErrMarks        = errors.New("username must not begin with, repeat or stack combining marks")
)

// Error is a refused name: the rule it broke and what in the name broke it.
type Error struct {
	// Rule is one of the rule sentinels above.
	Rule error
	// Detail says what broke the rule (may be empty).
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Rule.Error()
	}
	return e.Rule.Error() + ": " + e.Detail
}

// Unwrap makes the error match ErrInvalid and its rule.
func (e *Error) Unwrap() []error { return []error{ErrInvalid, e.Rule} }

func refuse(rule error, format string, args ...any) *Error {
	if format == "" {
		return &Error{Rule: rule}
	}
	return &Error{Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// Normalize returns the form of name that is stored, looked up and
// compared (NFC), or an *Error when name breaks the rules every name has
// always had to keep: valid UTF-8, 1 to MaxLen characters, no spaces, no
// control or invisible characters.
func Normalize(name string) (string, error) {
	switch {
	case name == "":
		return "", refuse(ErrRequired, "")
	case len(name) > MaxInputBytes:
		return "", refuse(ErrTooLong, "")
	case !utf8.ValidString(name):
		return "", refuse(ErrEncoding, "")
	}
	n := name
	if !isASCII(n) {
		n = norm.NFC.String(n)
	}
	if c := utf8.RuneCountInString(n); c > MaxLen {
		return "", refuse(ErrTooLong, "it has %d", c)
	}
	for _, r := range n {
		switch {
		case unicode.IsSpace(r):
			return "", refuse(ErrSpace, "%s", codePoint(r))
		case !unicode.IsPrint(r):
			return "", refuse(ErrInvisible, "%s", codePoint(r))
		}
	}
	return n, nil
}

// Validate returns the normal form of a new name (as Normalize), or an
// *Error naming the rule it breaks.
func Validate(name string) (string, error) {
	n, err := Normalize(name)
	if err != nil {
		return "", err
	}
	if isASCII(n) {
		// Printable ASCII without spaces is all PRECIS-valid, one script,
		// one numbering system and has no marks.
		return n, nil
	}
	for _, r := range n {
		if f := width.LookupRune(r).Folded(); f != 0 {
			return "", refuse(ErrWidth, "write %s instead of %s", quoted(f), quoted(r))
		}
	}
	// The specific rules first, so that the message names the one that
	// matters ("аlice" mixes scripts; that it also passes the Bidi Rule
	// does not help), then the whole PRECIS profile.
	for _, check := range []func(string) error{checkChars, checkDigits, checkScripts, checkMarks, checkPRECIS} {
		if err := check(n); err != nil {
			return "", err
		}
	}
	return n, nil
}

// contextual are the characters that RFC 5892 (appendix A) allows only in
// some contexts (CONTEXTJ and CONTEXTO); PRECIS checks their context.
func contextual(r rune) bool {
	switch {
	case r == 0x200C, r == 0x200D, r == 0x00B7, r == 0x0375, r == 0x05F3, r == 0x05F4, r == 0x30FB:
		return true
	case 0x0660 <= r && r <= 0x0669, 0x06F0 <= r && r <= 0x06F9:
		return true
	}
	return false
}

// checkChars refuses the first character that the PRECIS IdentifierClass
// never allows (symbols, emoji, non-ASCII punctuation, compatibility
// forms).
func checkChars(n string) error {
	allowed := precis.UsernameCasePreserved.Allowed()
	for _, r := range n {
		if !allowed.Contains(r) && !contextual(r) {
			return refuse(ErrDisallowed, "%s is not allowed", quoted(r))
		}
	}
	return nil
}

// checkPRECIS applies the UsernameCasePreserved profile to n (already NFC
// and width-folded, so the profile must leave it unchanged).
func checkPRECIS(n string) error {
	out, err := precis.UsernameCasePreserved.String(n)
	if err == nil {
		if out != n {
			// Cannot happen for an NFC, width-folded name; refuse rather
			// than store a name that is not its own canonical form.
			return refuse(ErrDisallowed, "it is not in its canonical form")
		}
		return nil
	}
	if errors.Is(err, bidirule.ErrInvalid) {
		return refuse(ErrDirection, "")
	}
	for _, r := range n {
		if contextual(r) {
			return refuse(ErrContext, "%s", quoted(r))
		}
	}
	return refuse(ErrDisallowed, "")
}

// Scripts whose letters look like Latin ones (TS #39 "moderately
// restrictive" names Cyrillic and Greek; Armenian has օ, ս, ո, հ too): they
// are never mixed with Latin.
var latinLookalikes = map[string]bool{"Cyrillic": true, "Greek": true, "Armenian": true}

// recommended are the scripts of Unicode TS #31 table 5 (Recommended
// Scripts); only these may be mixed with Latin.
var recommended = map[string]bool{
	"Arabic": true, "Armenian": true, "Bengali": true, "Bopomofo": true, "Cyrillic": true,
	"Devanagari": true, "Ethiopic": true, "Georgian": true, "Greek": true, "Gujarati": true,
	"Gurmukhi": true, "Han": true, "Hangul": true, "Hebrew": true, "Hiragana": true,
	"Kannada": true, "Katakana": true, "Khmer": true, "Lao": true, "Latin": true,
	"Malayalam": true, "Myanmar": true, "Oriya": true, "Sinhala": true, "Tamil": true,
	"Telugu": true, "Thaana": true, "Thai": true, "Tibetan": true,
}

// cjk are the script combinations that write one language: Japanese (Han,
// Hiragana, Katakana), Korean (Han, Hangul) and Chinese with Bopomofo. TS
// #39 resolves them to one script each.
var cjk = []map[string]bool{
	{"Han": true, "Hiragana": true, "Katakana": true},
	{"Han": true, "Hangul": true},
	{"Han": true, "Bopomofo": true},
}

// scriptsAllowed reports whether a name may use these scripts together
// (Common and Inherited left out): one script; a CJK combination; or Latin
// with one recommended script or CJK combination that does not look like
// Latin (TS #39 "highly" and "moderately restrictive").
func scriptsAllowed(scripts []string) bool {
	others := make([]string, 0, len(scripts))
	for _, s := range scripts {
		if s != "Latin" {
			others = append(others, s)
		}
	}
	withLatin := len(others) < len(scripts)
	switch {
	case len(scripts) <= 1:
		return true
	case oneCJK(others):
		return true
	case len(others) == 1:
		return withLatin && recommended[others[0]] && !latinLookalikes[others[0]]
	}
	return false
}

func oneCJK(scripts []string) bool {
	for _, set := range cjk {
		all := true
		for _, s := range scripts {
			all = all && set[s]
		}
		if all {
			return true
		}
	}
	return false
}

// checkScripts refuses a name whose scripts may not be mixed, naming the
// first character of each of two scripts that clash.
func checkScripts(n string) error {
	var scripts []string
	first := map[string]rune{}
	for _, r := range n {
		s := scriptOf(r)
		if s == "Common" || s == "Inherited" || s == "" {
			continue
		}
		if _, seen := first[s]; seen {
			continue
		}
		first[s] = r
		scripts = append(scripts, s)
		if scriptsAllowed(scripts) {
			continue
		}
		// Name the earliest script this one cannot go with.
		clash := scripts[0]
		for _, p := range scripts[:len(scripts)-1] {
			if !scriptsAllowed([]string{p, s}) {
				clash = p
				break
			}
		}
		return refuse(ErrMixedScripts, "%s %s with %s %s", clash, quoted(first[clash]), s, quoted(r))
	}
	return nil
}

// checkDigits refuses decimal digits of more than one numbering system
// (as "1" with "١"), a spoofing device of TS #39.
func checkDigits(n string) error {
	var zero, firstDigit rune = -1, 0
	for _, r := range n {
		if !unicode.Is(unicode.Nd, r) {
			continue
		}
		z := digitZero(r)
		if zero < 0 {
			zero, firstDigit = z, r
			continue
		}
		if z != zero {
			return refuse(ErrMixedDigits, "%s with %s", quoted(firstDigit), quoted(r))
		}
	}
	return nil
}

// digitZero returns the zero of r's numbering system: decimal digits come
// in runs of ten, zero first, and adjacent runs are whole multiples of ten.
func digitZero(r rune) rune {
	start := r
	for unicode.Is(unicode.Nd, start-1) {
		start--
	}
	return start + (r-start)/10*10
}

// checkMarks refuses a name that begins with a combining mark (it would
// join whatever is displayed before it), repeats one nonspacing mark on a
// character, or stacks more than maxMarks of them. It looks at the
// decomposed form, as TS #39 says: "á" followed by U+0301 repeats the mark.
func checkMarks(n string) error {
	run := 0
	var prev rune
	for i, r := range norm.NFD.String(n) {
		if !unicode.Is(unicode.Mn, r) {
			if i == 0 && unicode.Is(unicode.M, r) {
				return refuse(ErrMarks, "it begins with %s", quoted(r))
			}
			run, prev = 0, r
			continue
		}
		if i == 0 {
			return refuse(ErrMarks, "it begins with %s", quoted(r))
		}
		run++
		if r == prev {
			return refuse(ErrMarks, "%s twice in a row", quoted(r))
		}
		if run > maxMarks {
			return refuse(ErrMarks, "more than %d on one character", maxMarks)
		}
		prev = r
	}
	return nil
}

// likelyScripts are tried first by scriptOf, in this order.
var likelyScripts = []string{
	"Latin", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul",
	"Arabic", "Hebrew", "Common", "Inherited",
}

// scriptOf returns the Unicode Script property of r ("" if unassigned).
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return "Common"
	}
	for _, s := range likelyScripts {
		if unicode.Is(unicode.Scripts[s], r) {
			return s
		}
	}
	for s, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return s
		}
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// codePoint names r without showing it (it may be invisible or a control).
func codePoint(r rune) string { return fmt.Sprintf("U+%04X", r) }

// quoted shows a visible r with its code point; a combining mark is shown
// on a dotted circle, as Unicode charts do.
func quoted(r rune) string {
	glyph := string(r)
	if unicode.Is(unicode.M, r) {
		glyph = "\u25cc" + glyph
	}
	return fmt.Sprintf("%q (%s)", glyph, codePoint(r))
}
