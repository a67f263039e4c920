package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestExitCodes: usage errors exit 2, as the README says, an unknown
// subcommand too (it exited 1).
func TestExitCodes(t *testing.T) {
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"bogus"}, ExitUsage, `unknown command "bogus"`},
		{[]string{"statu"}, ExitUsage, `did you mean "status"?`},
		{[]string{"status", "extra"}, ExitUsage, "status takes 0 argument(s)"},
		{[]string{"--no-such-flag"}, ExitUsage, "unknown flag"},
		{[]string{"version"}, ExitOK, ""},
		{nil, ExitOK, ""},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := Main(context.Background(), c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("cutover %q: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.stderr)
		}
	}
	var out bytes.Buffer
	Main(context.Background(), nil, &out, &out)
	if !strings.Contains(out.String(), "Start here:") {
		t.Errorf("cutover without arguments: got %q, want the help", out.String())
	}
}
