package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
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

// The daemon's error kinds give the exit code of errkind's table, the same
// one the API takes its HTTP statuses from.
func TestExitCodeOfErrorKinds(t *testing.T) {
	cases := []struct {
		err  error
		code int
	}{
		{&api.Error{Kind: api.KindConfig, Msg: "bad"}, ExitUsage},
		{&api.Error{Kind: api.KindUsage, Msg: "bad"}, ExitUsage},
		{&api.Error{Kind: api.KindBusy, Msg: "busy"}, ExitFailed},
		{&api.Error{Kind: api.KindNotFound, Msg: "no"}, ExitFailed},
		{fmt.Errorf("deploy: %w", &api.Error{Kind: api.KindAborted, Msg: "aborted"}), ExitFailed},
		{&UsageError{Err: errors.New("flag")}, ExitUsage},
		{&config.Error{File: "cutover.toml", Line: 3, Msg: "bad"}, ExitUsage},
		{errors.New("anything else"), ExitFailed},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.code {
			t.Errorf("%v: exit %d, want %d", c.err, got, c.code)
		}
	}
}
