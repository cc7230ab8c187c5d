package username

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

func TestAcceptsNamesInManyScripts(t *testing.T) {
	for _, name := range []string{
		"alice", "Alice_01", "bob.smith@corp", "e2e-1-x", "!!!", "42",
		"Алексей", "Ёжик-2", "Σωκράτης", "山田太郎", "やまだ", "ヤマダ", "山田やまだヤマダ",
		"김철수", "金철수", "Tanaka田中", "Kim김", "محمد", "דוד", "José", "Müller", "Nguyễn",
		"Алексе́й", // a stress mark on е
		"ひらがなー", "क़लम", "ศรี", "Ռուբեն", "გიორგი",
		"ヨシダ・タロウ",  // katakana middle dot in Japanese context
		"col·lega", // Catalan middle dot between two l
		strings.Repeat("я", MaxLen), strings.Repeat("a", MaxLen), strings.Repeat("字", MaxLen),
	} {
		got, err := Validate(name)
		if err != nil {
			t.Errorf("Validate(%q): %v", name, err)
			continue
		}
		if got != norm.NFC.String(name) {
			t.Errorf("Validate(%q) = %q, want its NFC form", name, got)
		}
		if n, err := Normalize(name); err != nil || n != got {
			t.Errorf("Normalize(%q) = %q, %v; want %q (what Validate gives)", name, n, err, got)
		}
	}
}

func TestComposedAndDecomposedAreOneName(t *testing.T) {
	pairs := [][2]string{
		{"\u00e9mile", "e\u0301mile"},                                  // é
		{"Ren\u00e9e", "Rene\u0301e"},                                  // é
		{"\u0439\u043e\u0433\u0430", "\u0438\u0306\u043e\u0433\u0430"}, // й as и + breve
		{"\uac00\ub098", "\u1100\u1161\u1102\u1161"},                   // 가나 as conjoining jamo
		{"Nguy\u1ec5n", "Nguye\u0302\u0303n"},                          // ễ, marks in canonical order
		{"Nguy\u1ec5n", "Nguy\u00ea\u0303n"},                           // ễ from ê + tilde
	}
	for _, p := range pairs {
		a, errA := Validate(p[0])
		b, errB := Validate(p[1])
		if errA != nil || errB != nil {
			t.Fatalf("Validate(%q), Validate(%q): %v, %v", p[0], p[1], errA, errB)
		}
		if a != b || a != p[0] {
			t.Errorf("%q and %q normalise to %q and %q, want both %q", p[0], p[1], a, b, p[0])
		}
		na, _ := Normalize(p[1])
		if na != p[0] {
			t.Errorf("Normalize(%q) = %q, want %q", p[1], na, p[0])
		}
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name string
		rule error
		// lenient: Normalize accepts it (a stored name of this kind still
		// logs in and receives coins).
		lenient bool
	}{
		{"", ErrRequired, false},
		{strings.Repeat("a", MaxLen+1), ErrTooLong, false},
		{strings.Repeat("я", MaxLen+1), ErrTooLong, false},
		{strings.Repeat("x", MaxInputBytes+1), ErrTooLong, false},
		{"bad\xffutf8", ErrEncoding, false},
		{"two words", ErrSpace, false},
		{"tab\there", ErrSpace, false},
		{"nbsp\u00a0here", ErrSpace, false},
		{"ideographic\u3000space", ErrSpace, false},
		{"nul\x00", ErrInvisible, false},
		{"zero\u200bwidth", ErrInvisible, false},
		{"joiner\u200dhere", ErrInvisible, false},
		{"rlo\u202eevil", ErrInvisible, false},
		{"bom\ufeff", ErrInvisible, false},

		// Accepted before, refused for new names.
		{"\uff41\uff4c\uff49\uff43\uff45", ErrWidth, true}, // ａｌｉｃｅ
		{"\uff76\uff80\uff76\uff85", ErrWidth, true},       // ｶﾀｶﾅ halfwidth
		{"party\U0001f389", ErrDisallowed, true},           // emoji
		{"\U0001f600", ErrDisallowed, true},
		{"love\u2665", ErrDisallowed, true},         // ♥ symbol
		{"\u00abquoted\u00bb", ErrDisallowed, true}, // « » non-ASCII punctuation
		{"x\u00b2", ErrDisallowed, true},            // superscript two (compatibility)
		{"\ufb01le", ErrDisallowed, true},           // ﬁ ligature
		{"\u0430lice", ErrMixedScripts, true},       // Cyrillic а + Latin
		{"p\u0430ypal", ErrMixedScripts, true},
		{"\u0391lpha", ErrMixedScripts, true},         // Greek Α + Latin
		{"\u0410\u0391", ErrMixedScripts, true},       // Cyrillic + Greek
		{"\u0434\u0639", ErrMixedScripts, true},       // Cyrillic + Arabic
		{"\u0434\u5b57", ErrMixedScripts, true},       // Cyrillic + Han
		{"\u0434\u3042", ErrMixedScripts, true},       // Cyrillic + Hiragana
		{"\u3042\uac00", ErrMixedScripts, true},       // Hiragana + Hangul: two languages
		{"\u0578\u0582n", ErrMixedScripts, true},      // Armenian ո ւ + Latin n
		{"ali\u0639\u0644\u064a", ErrDirection, true}, // Latin + Arabic: LTR with RTL
		{"\u0639\u0644\u064aali", ErrDirection, true},
		{"user1\u0661", ErrMixedDigits, true},               // ASCII 1 with Arabic-Indic ١
		{"\u0967\u0031", ErrMixedDigits, true},              // Devanagari १ with ASCII 1
		{"\u0301abc", ErrMarks, true},                       // begins with a combining mark
		{"a\u0301\u0301", ErrMarks, true},                   // the same mark twice
		{"a\u0316\u0317\u0318\u0319\u031a", ErrMarks, true}, // five marks stacked
		{"a\u00b7b", ErrContext, true},                      // middle dot outside l·l
	}
	for _, c := range cases {
		_, err := Validate(c.name)
		if !errors.Is(err, c.rule) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want the rule %q", c.name, err, c.rule)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), c.rule.Error()) {
			t.Errorf("Validate(%q): message %q does not name the rule %q", c.name, err, c.rule)
		}
		if !utf8.ValidString(err.Error()) {
			t.Errorf("Validate(%q): message is not UTF-8: %q", c.name, err)
		}
		n, nerr := Normalize(c.name)
		switch {
		case c.lenient && nerr != nil:
			t.Errorf("Normalize(%q) = %v; a name accepted before must still normalise", c.name, nerr)
		case c.lenient && n != norm.NFC.String(c.name):
			t.Errorf("Normalize(%q) = %q, want the NFC form", c.name, n)
		case !c.lenient && !errors.Is(nerr, c.rule):
			t.Errorf("Normalize(%q) = %v, want the rule %q", c.name, nerr, c.rule)
		}
	}
}

func TestMessagesNameTheCharacter(t *testing.T) {
	for name, want := range map[string]string{
		"\u0430lice":            `username must not mix scripts: Cyrillic "а" (U+0430) with Latin "l" (U+006C)`,
		"al\u0456ce":            `username must not mix scripts: Latin "a" (U+0061) with Cyrillic "і" (U+0456)`,
		"party\U0001f389":       `username may contain only letters, digits, combining marks and ASCII punctuation: "🎉" (U+1F389) is not allowed`,
		"\uff41b":               `username must not use fullwidth or halfwidth forms: write "a" (U+0061) instead of "ａ" (U+FF41)`,
		strings.Repeat("я", 70): `username must be at most 64 characters: it has 70`,
		"a b":                   `username must not contain spaces: U+0020`,
		"a\u0301\u0301":         `username must not begin with, repeat or stack combining marks: "◌́" (U+0301) twice in a row`,
	} {
		_, err := Validate(name)
		if err == nil || err.Error() != want {
			t.Errorf("Validate(%q) = %v, want %q", name, err, want)
		}
	}
}

func TestLengthCountsCharactersOfTheNormalForm(t *testing.T) {
	// 64 é typed decomposed are 128 code points, 64 characters once composed.
	if _, err := Validate(strings.Repeat("e\u0301", MaxLen)); err != nil {
		t.Errorf("64 decomposed é: %v", err)
	}
	if _, err := Validate(strings.Repeat("e\u0301", MaxLen+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("65 decomposed é: %v, want too long", err)
	}
	// 64 Hangul syllables as conjoining jamo: 576 bytes, 64 characters.
	jamo := strings.Repeat("\u1100\u1161\u11a8", MaxLen)
	if got, err := Validate(jamo); err != nil || utf8.RuneCountInString(got) != MaxLen {
		t.Errorf("64 syllables as jamo: %q, %v", got, err)
	}
	// Multi-byte characters count once: 64 CJK characters are 192 bytes.
	if _, err := Validate(strings.Repeat("字", MaxLen)); err != nil {
		t.Errorf("64 CJK characters: %v", err)
	}
	// Combining marks are characters of their own: one base letter and 64
	// marks is 65 characters.
	if _, err := Normalize("a" + strings.Repeat("\u0301", MaxLen)); !errors.Is(err, ErrTooLong) {
		t.Errorf("a + 64 marks: %v, want too long", err)
	}
}

// pools of characters for the generator, one per script or kind.
var pools = [][]rune{
	[]rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
	[]rune("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"),
	[]rune("αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩάέήίόύώ"),
	[]rune("山田太郎花子東京日本語中文字"),
	[]rune("あいうえおかきくけこさしすせそ"),
	[]rune("アイウエオカキクケコサシスセソ"),
	[]rune("가나다라마바사아자차카타파하김이박"),
	[]rune("ابتثجحخدذرزسشصضطظعغفقكلمنهوي"),
	[]rune("אבגדהוזחטיכלמנסעפצקרשת"),
	[]rune("0123456789_-."),
	[]rune("\U0001f600\U0001f389\u2665\u2603"), // emoji and symbols
	[]rune("\u0301\u0300\u0308\u0303\u0306"),   // combining marks
}

// randomName draws a name of 1..MaxLen+2 characters from one to three pools.
func randomName(rng *rand.Rand) string {
	k := 1 + rng.IntN(3)
	chosen := make([][]rune, k)
	for i := range chosen {
		chosen[i] = pools[rng.IntN(len(pools))]
	}
	n := 1 + rng.IntN(MaxLen+2)
	var b strings.Builder
	for range n {
		p := chosen[rng.IntN(k)]
		b.WriteRune(p[rng.IntN(len(p))])
	}
	return b.String()
}

// TestProperties checks, over random names from many scripts, what every
// caller relies on: Validate's answer is NFC, PRECIS-stable, at most MaxLen
// characters and a fixed point of both functions; whatever Validate accepts
// Normalize accepts with the same result; refusals match ErrInvalid.
func TestProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	f := func() bool {
		name := randomName(rng)
		got, err := Validate(name)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate(%q): %v does not match ErrInvalid", name, err)
				return false
			}
			return true
		}
		accepted++
		p, perr := precis.UsernameCasePreserved.String(got)
		n, nerr := Normalize(name)
		again, aerr := Validate(got)
		switch {
		case !norm.NFC.IsNormalString(got):
			t.Errorf("Validate(%q) = %q is not NFC", name, got)
		case perr != nil || p != got:
			t.Errorf("Validate(%q) = %q, which PRECIS maps to %q, %v", name, got, p, perr)
		case utf8.RuneCountInString(got) > MaxLen:
			t.Errorf("Validate(%q) = %q is longer than %d", name, got, MaxLen)
		case nerr != nil || n != got:
			t.Errorf("Normalize(%q) = %q, %v; Validate gave %q", name, n, nerr, got)
		case aerr != nil || again != got:
			t.Errorf("Validate(Validate(%q)) = %q, %v; want %q", name, again, aerr, got)
		default:
			return true
		}
		return false
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 20000}); err != nil {
		t.Fatal(err)
	}
	if accepted < 2000 {
		t.Errorf("only %d of 20000 random names accepted: the generator does not exercise acceptance", accepted)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"alice", "e\u0301", "\u0430lice", "\U0001f600", "a b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Normalize(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Normalize(%q): %v does not match ErrInvalid", s, err)
			}
			return
		}
		if again, err := Normalize(n); err != nil || again != n {
			t.Fatalf("Normalize is not idempotent on %q: %q, %v", n, again, err)
		}
		if v, err := Validate(s); err == nil && v != n {
			t.Fatalf("Validate(%q) = %q, Normalize = %q", s, v, n)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	for _, name := range []string{"alice_01", "Алексей", "山田やまだヤマダ"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Validate(name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
