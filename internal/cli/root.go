// Package cli implements cutover's command line: one file per subcommand.
// Commands that act on a running daemon talk to it over its admin API
// (internal/api); the rest (init, migrate, demo, version) work locally.
//
// Exit codes are decided in one place, exitCode, from the kind of the error
// and errkind's table (the API's HTTP statuses come from the same table):
// 0 success, 1 the operation failed (a deploy aborted, a rollback refused,
// …), 2 usage or config error.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/errkind"
	"github.com/spf13/cobra"
)

// Exit codes of the cutover binary.
const (
	ExitOK     = errkind.ExitOK     // success
	ExitFailed = errkind.ExitFailed // the operation ran and failed: deploy aborted, rollback refused…
	ExitUsage  = errkind.ExitUsage  // bad flags, arguments or configuration; nothing was done
)

// UsageError marks an error as the caller's: bad flags, arguments or config.
// It maps to exit code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// usageErrorf returns a UsageError with a formatted message.
func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// globals holds what every subcommand may need: the streams, the config
// path flag and the --json switch.
type globals struct {
	stdout, stderr io.Writer
	configPath     string // -c/--config; empty means $CUTOVER_CONFIG, then ./cutover.toml
	app            string // --app: the app a command is about, in a daemon with several
}

// Main runs the command line with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var silent *silentError
	if !errors.As(err, &silent) {
		fmt.Fprintf(stderr, "cutover: %v\n", err)
	}
	return exitCode(err)
}

// silentError carries an exit code for an error the command already
// reported to the user in its own words.
type silentError struct {
	code int
	err  error
}

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

// exitCode maps an error to the process exit code; this is the only place
// that decides it.
func exitCode(err error) int {
	var silent *silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	return kindOf(err).ExitCode()
}

// kindOf classifies an error of a command: the daemon's kind for an API
// error, usage for a UsageError, config for a config file that does not
// load, failed for any other.
func kindOf(err error) errkind.Kind {
	var usage *UsageError
	var ae *api.Error
	switch {
	case errors.As(err, &usage):
		return errkind.Usage
	case isConfigError(err):
		return errkind.Config
	case errors.As(err, &ae):
		return errkind.Kind(ae.Kind)
	}
	return errkind.Failed
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "cutover",
		Short: "Zero-downtime deploys: a version-aware proxy, a supervisor, releases and migrations",
		Long: `cutover ships new versions of a web application with nobody noticing:
no failed request, no error page, no user bounced between old and new code,
and no database change that breaks the version still running.

Start here:
  cutover demo            watch a whole deploy story run in a temp dir
  cutover init            write a commented cutover.toml for your app
  cutover serve           run the daemon: proxy, supervisor, admin API
  cutover deploy PATH     ship a release (directory, .tar.gz, or --git REF)
  cutover status          what serves now, and any deploy in flight
  cutover rollback        go back to the previous release

Several apps in one daemon ([apps.NAME] in cutover.toml): add --app NAME to
a command; 'cutover reload' applies added or removed apps.

Docs: README.md, docs/deploy.md, docs/config.md, docs/releases.md,
docs/strategies.md, docs/migrations.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", "",
		"path to cutover.toml (default: $CUTOVER_CONFIG, then ./cutover.toml)")
	root.PersistentFlags().StringVar(&g.app, "app", "",
		"the app a command is about, when the daemon runs several ([apps.NAME]); optional with one")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &UsageError{Err: fmt.Errorf("%w\nRun '%s --help' for usage.", err, cmd.CommandPath())}
	})
	for _, add := range subcommands {
		root.AddCommand(add(g))
	}
	// cobra's own unknown-command error is untyped (exit 1); a usage
	// error it is. Without arguments, cutover prints its help.
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := ""
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf("; did you mean %q?", s[0])
		}
		return usageErrorf("unknown command %q%s\nRun 'cutover --help' for usage.", args[0], hint)
	}
	root.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	return root
}

// subcommands lists the constructors of every subcommand; each file
// registers its own in an init function so files stay independent.
var subcommands []func(*globals) *cobra.Command

func register(f func(*globals) *cobra.Command) { subcommands = append(subcommands, f) }

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %d argument(s), got %d\nRun '%s --help' for usage.", cmd.Name(), n, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// maxArgs is cobra.MaximumNArgs with a usage error.
func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageErrorf("%s takes at most %d argument(s), got %d\nRun '%s --help' for usage.", cmd.Name(), n, len(args), cmd.CommandPath())
		}
		return nil
	}
}
