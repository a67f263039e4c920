package config

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The name checks against the regular expressions they replace, on edge
// cases and on random strings over the bytes that matter.
func TestNameChecks(t *testing.T) {
	checks := []struct {
		name string
		fn   func(string) bool
		re   *regexp.Regexp
	}{
		{"isAppName", isAppName, regexp.MustCompile(`^[A-Za-z0-9._-]+$`)},
		{"isEnvName", isEnvName, regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)},
		{"isCookieName", isCookieName, regexp.MustCompile(`^[A-Za-z0-9_-]+$`)},
		{"isHeaderName", isHeaderName, regexp.MustCompile(`^[A-Za-z0-9-]+$`)},
		{"isHostName", isHostName, regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)},
		{"isTableName", isTableName, regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$`)},
	}
	id63, id64 := "t"+strings.Repeat("x", 62), "t"+strings.Repeat("x", 63)
	inputs := []string{
		"", ".", "_", "-", "a", "A", "0", "0a", "a0", "my-app", "my.app", "my_app", "MY_VAR", "X-Cutover-Release",
		"a b", "a\n", "\na", "é", "a.b", "a..b", ".a", "a.", "a.b.c", "_x._y", "1.a", "a.1",
		"a-", "-a", "a-b", "a-.b", "a.-b", "shop.example.com", "localhost", "127.0.0.1", "xn--bcher-kva.example",
		id63, id64, id63 + "." + id63, id63 + "." + id64, id64 + "." + id63,
	}
	const alphabet = "aZ09_-. \n.\xc3\xa9"
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(8))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, c := range checks {
		for _, s := range inputs {
			if got, want := c.fn(s), c.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, the expression says %v", c.name, s, got, want)
			}
		}
	}
}
