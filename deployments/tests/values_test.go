package deploytests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var keyLine = regexp.MustCompile(`^\s*[A-Za-z0-9_.-]+:\s*(.*)$`)

// undocumented returns the lines of a values file that set a value without a
// comment directly above. Keys that only open a nested block, and the
// content of lists, are covered by the comment of their parent.
func undocumented(text string) []string {
	lines := strings.Split(text, "\n")
	var bad []string
	seqIndent := -1
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " "))
		if seqIndent >= 0 && indent > seqIndent {
			continue
		}
		seqIndent = -1
		if strings.HasPrefix(trimmed, "- ") {
			seqIndent = indent
			continue
		}
		m := keyLine.FindStringSubmatch(l)
		if m == nil {
			bad = append(bad, l)
			continue
		}
		if m[1] == "" { // opens a block
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			bad = append(bad, l)
		}
	}
	return bad
}

func TestValuesAreDocumentedLineByLine(t *testing.T) {
	for _, f := range []string{"values.yaml", "values-dev.yaml"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, "deployments/helm/merch-shop", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range undocumented(string(data)) {
			t.Errorf("%s: no comment above %q", f, strings.TrimSpace(l))
		}
	}
	if got := undocumented("a:\n  # -- fine\n  b: 1\n  c: 2\n"); len(got) != 1 {
		t.Errorf("the check itself: %v", got)
	}
}
