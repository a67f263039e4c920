package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/errkind"
)

func init() {
	register(newDeployCmd)
	register(newRollbackCmd)
}

func newDeployCmd(g *globals) *cobra.Command {
	var req deploy.Request
	cmd := &cobra.Command{
		Use:   "deploy PATH | deploy --git REF",
		Short: "Ship a release (a directory, a .tar.gz or a git ref) with zero downtime",
		Long: `Ship a new release of the app with zero downtime.

PATH is a directory or a .tar.gz/.tgz (a single top-level directory inside
the tarball becomes the release root). With --git REF, the daemon checks out
REF (a tag, branch or commit) of [release] repo into a fresh directory, runs
[release] test and build there (their output streams here; a failure stops
the deploy before anything touches traffic), and ships the result.

The daemon copies the release to
<data_dir>/releases/<id>/, reads cutover.toml as it is now, boots
app.instances new instances beside the running ones, waits until each passes
its health check (a 2xx answer to app.health.path; a redirect fails)
app.health.healthy_after times in a row, switches traffic at once, drains
the old release (in-flight requests, streams and websockets
get proxy.drain_timeout), stops it, and points <data_dir>/current at the new
release.

While they boot, every 5 seconds a "waiting:" line names each instance not
healthy yet and its latest health check. If a new instance exits during
boot (even once: a crash loop is not a boot) or is not healthy within
app.health.boot_timeout, the new instances are stopped, their last log lines
shown, and the old release — which never stopped serving — stays live.
'cutover abort' during the boot stops them at once.

This command only sends the request and prints the daemon's report, at a
lower CPU priority (nice 10) so that the app's requests come first.

Traffic moves by [deploy] strategy: "bluegreen" (all at once), "rolling"
(batch by batch), "canary" (weighted steps judged against the old
release; a bad step goes back by itself) or "stop-first" (for an app that
cannot run two copies at once: requests are held while the old release
stops and the new one boots; a boot failure starts the old one again). With --preview the new release
boots and waits: only requests that carry its preview token (a random
secret made for this deploy and printed with a link that carries it: by
header X-Cutover-Preview, cookie cutover_preview, or query parameter
?cutover_preview=) reach it, until 'cutover promote' or 'cutover abort'.

Database changes: the release's pending expand migrations ([database] dir)
and the app's own [database] migrate_command run before the new release
boots. First a schema preview runs them on a scratch copy of the live
database and prints every schema change, additive or breaking for the live
release (a dropped or renamed table or column, a changed type, a new NOT
NULL...). A breaking change is refused — nothing migrated, nothing booted —
unless the deploy is held: with --hold (or [deploy] breaking = "hold") the
proxy holds new requests, lets those in flight finish, runs the changes,
boots the new release and switches, then releases the held requests to it.
Users see the hold as latency, bounded by proxy.hold_timeout, never as an
error.

Exit status: 0 deployed (or, with --preview, ready for preview); 1 the deploy
failed, was rolled back, or another one is running; 2 bad arguments or a
broken config file.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case req.Git != "" && len(args) == 1:
				return usageErrorf("deploy takes a PATH or --git REF, not both")
			case req.Git == "" && len(args) == 0:
				return usageErrorf("deploy needs a PATH (a directory or .tar.gz) or --git REF\nRun 'cutover deploy --help' for usage.")
			case len(args) == 1:
				src, err := filepath.Abs(args[0])
				if err != nil {
					return &UsageError{Err: err}
				}
				if _, err := os.Stat(src); err != nil {
					return usageErrorf("deploy: %s: no such file or directory (want a release directory or a .tar.gz)", args[0])
				}
				req.Source = src
			}
			c, _, err := g.configClient()
			if err != nil {
				return err
			}
			req.User = currentUser()
			return runDeploy(g, cmd, c, req)
		},
	}
	cmd.Flags().StringVar(&req.Git, "git", "", "check out, test and build this ref of [release] repo")
	cmd.Flags().BoolVar(&req.Preview, "preview", false, "boot the release and wait for 'cutover promote' before moving traffic")
	cmd.Flags().BoolVar(&req.Hold, "hold", false, "hold requests in the proxy while the database changes run and the release boots (ships a breaking schema change)")
	return cmd
}

// currentUser names who runs the command, for the release's record.
func currentUser() string {
	for _, k := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

func newRollbackCmd(g *globals) *cobra.Command {
	var force, hold bool
	cmd := &cobra.Command{
		Use:   "rollback [RELEASE]",
		Short: "Go back to an earlier release (default: the previous one), with zero downtime",
		Long: `Go back to an earlier release with the same zero-downtime path as a deploy:
boot it beside the live one, switch, drain, stop. The release runs with the
configuration it was deployed with.

RELEASE is a release id from 'cutover releases', or its label suffix (e.g.
"v1"); default: the release that was live before the current one.

A rollback is refused when the database changed in ways the older code may
not handle: contract migrations ran since it was live, or the schema it went
live on (recorded for each release) lost or changed something — a table, a
column, a type — whoever changed it, cutover's migrations or the app's own.
The refusal names what changed; --force goes back anyway. --hold switches
held: the proxy holds requests while the target boots, then releases them
to it, so no request reaches either release in between (a rollback of a
deploy.strategy "stop-first" app is always held, and stops the live
release first).

Exit status: 0 rolled back; 1 refused or failed (the live release keeps
serving); 2 bad arguments (a mistake in cutover.toml does not stop a
rollback: the release runs with the configuration it recorded).`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.client()
			if err != nil {
				return err
			}
			req := deploy.Request{Rollback: true, Force: force, Hold: hold}
			if len(args) == 1 {
				req.Release = args[0]
			}
			return runDeploy(g, cmd, c, req)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "roll back even where cutover refuses to protect the app")
	cmd.Flags().BoolVar(&hold, "hold", false, "hold requests while the switch happens instead of running both releases at once")
	return cmd
}

// runDeploy streams a deploy's events as lines and returns its outcome.
func runDeploy(g *globals, cmd *cobra.Command, c *api.Client, req deploy.Request) error {
	start := time.Now()
	what := "deploy"
	if req.Rollback {
		what = "rollback"
	}
	res, err := c.Deploy(cmd.Context(), req, func(ev deploy.Event) { renderEvent(g.stdout, ev) })
	return finishDeploy(g, what, start, res, err)
}

// finishDeploy prints the one-line outcome of a deploy stream and picks
// the exit status.
func finishDeploy(g *globals, what string, start time.Time, res deploy.Event, err error) error {
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			fmt.Fprintf(g.stderr, "%s failed after %s: %s\n", what, time.Since(start).Round(10*time.Millisecond), ae.Msg)
			return &silentError{code: errkind.Kind(ae.Kind).ExitCode(), err: err}
		}
		return err
	}
	if res.Type == "preview" {
		fmt.Fprintf(g.stdout, "%s: %s is in preview; `cutover promote` or `cutover abort`\n", what, res.Release)
		fmt.Fprintf(g.stdout, "preview token: %s\n", res.PreviewToken)
		for _, l := range res.PreviewLinks {
			fmt.Fprintf(g.stdout, "preview link:  %s\n", l)
		}
		return nil
	}
	fmt.Fprintf(g.stdout, "%s: %s is live (%s)\n", what, res.Release, time.Since(start).Round(10*time.Millisecond))
	return nil
}

// renderEvent prints one deploy event for humans.
func renderEvent(w io.Writer, ev deploy.Event) {
	switch ev.Type {
	case "step":
		switch ev.Status {
		case "start":
			return
		case "ok":
			fmt.Fprintf(w, "  ✓ %-13s %7s  %s\n", ev.Step, fmtMS(ev.DurationMS), ev.Message)
		case "failed":
			fmt.Fprintf(w, "  ✗ %-13s %7s  %s\n", ev.Step, fmtMS(ev.DurationMS), ev.Message)
		default:
			fmt.Fprintf(w, "  - %-13s %7s  %s\n", ev.Step, ev.Status, ev.Message)
		}
	case "info":
		fmt.Fprintf(w, "    %s\n", ev.Message)
	case "waiting":
		fmt.Fprintf(w, "    waiting: %s\n", ev.Message)
	case "preview":
		fmt.Fprintf(w, "  ◆ %s\n", ev.Message)
	case "output":
		for _, l := range ev.Lines {
			fmt.Fprintf(w, "    %-5s | %s\n", ev.Instance, strings.TrimRight(l, "\r"))
		}
	case "log":
		fmt.Fprintf(w, "    %s:\n", ev.Message)
		for _, l := range ev.Lines {
			fmt.Fprintf(w, "      | %s\n", strings.TrimRight(l, "\r"))
		}
	}
}

func fmtMS(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}
