package cli

import (
	"context"
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
	"github.com/cutover/cutover/internal/state"
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
(batch by batch) or "canary" (weighted steps judged against the old
release; a bad step goes back by itself). With --preview the new release
boots and waits: only requests naming it (header or cookie, printed below)
reach it, until 'cutover promote' or 'cutover abort'.

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
	var force bool
	cmd := &cobra.Command{
		Use:   "rollback [RELEASE]",
		Short: "Go back to an earlier release (default: the previous one), with zero downtime",
		Long: `Go back to an earlier release with the same zero-downtime path as a deploy:
boot it beside the live one, switch, drain, stop. The release runs with the
configuration it was deployed with.

RELEASE is a release id from 'cutover releases', or its label suffix (e.g.
"v1"); default: the release that was live before the current one.

Exit status: 0 rolled back; 1 refused or failed (the live release keeps
serving); 2 bad arguments (a mistake in cutover.toml does not stop a
rollback: the release runs with the configuration it recorded).`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.client()
			if err != nil {
				return err
			}
			req := deploy.Request{Rollback: true, Force: force}
			if len(args) == 1 {
				req.Release = args[0]
			}
			return runDeploy(g, cmd, c, req)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "roll back even where cutover refuses to protect the app")
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
	if errors.Is(err, api.ErrStreamCut) {
		return afterStreamCut(cmd.Context(), g, c, what, start, err)
	}
	return finishDeploy(g, what, start, res, err)
}

// streamCutWait bounds how long a CLI whose deploy stream was cut waits
// for a daemon (the keeper restarts a dead one at once, with a backoff of
// up to 8 s if it keeps dying) to say what became of the deploy.
const streamCutWait = 30 * time.Second

// afterStreamCut finds out what became of a deploy whose event stream
// ended without a result, from the deploy history of the daemon (a new
// one if it died), and says it: a dead daemon's deploy is recorded as
// interrupted by the next one, its new instances stopped, the live
// release unchanged.
func afterStreamCut(ctx context.Context, g *globals, c *api.Client, what string, start time.Time, cut error) error {
	fmt.Fprintf(g.stderr, "%s: the connection to the daemon was cut after %s (%v); asking the daemon what became of the %s…\n",
		what, time.Since(start).Round(10*time.Millisecond), cut, what)
	wctx, cancel := context.WithTimeout(ctx, streamCutWait)
	defer cancel()
	d, err := awaitOutcome(wctx, c, what, start)
	fail := func(format string, args ...any) error {
		fmt.Fprintf(g.stderr, format+"\n", args...)
		return &silentError{code: ExitFailed, err: cut}
	}
	switch {
	case err != nil && d.ID == 0:
		return fail("%s: no daemon answered within %s (%v): see `cutover status` once it is back; a deploy the daemon did not finish is recorded as interrupted and the live release keeps serving",
			what, streamCutWait, err)
	case d.State == state.DeployRunning:
		return fail("%s: #%d of %s is still running in the daemon (only the connection broke): follow it with `cutover status`", what, d.ID, d.Release)
	case d.State == state.DeploySucceeded:
		fmt.Fprintf(g.stdout, "%s: %s is live (%s; the deploy finished though the connection was cut)\n", what, d.Release, time.Since(start).Round(10*time.Millisecond))
		return nil
	case d.State == state.DeployInterrupted:
		step := "its start"
		if n := len(d.Steps); n > 0 {
			step = "the step after " + d.Steps[n-1].Name
		}
		live := "(none)"
		if st, err := c.Status(ctx); err == nil && st.Active != "" {
			live = st.Active
		}
		return fail("%s: #%d of %s was interrupted: the daemon stopped during %s and a new daemon took over; %s was not deployed (its instances were stopped) and %s is live. Run `cutover %s` again.",
			what, d.ID, orNone(d.Release), step, orNone(d.Release), live, what)
	default:
		return fail("%s: #%d of %s ended %s: %s", what, d.ID, orNone(d.Release), d.State, d.Error)
	}
}

func orNone(release string) string {
	if release == "" {
		return "a release not yet prepared"
	}
	return release
}

// awaitOutcome polls the daemon (a new one, after a restart) for the
// deploy of kind started at start or later, until it is no longer
// running or ctx ends. It returns the latest it saw, and ctx's error when
// it ran out.
func awaitOutcome(ctx context.Context, c *api.Client, kind string, start time.Time) (state.Deploy, error) {
	var last state.Deploy
	for {
		ds, err := c.Deploys(ctx, 10)
		if err == nil {
			for _, d := range ds { // most recent first
				if d.Kind == kind && !d.StartedAt.Before(start.Add(-time.Second)) {
					last = d
					break
				}
			}
			if last.ID != 0 && last.State != state.DeployRunning {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			if last.ID != 0 {
				return last, nil
			}
			if err == nil {
				err = ctx.Err()
			}
			return last, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// finishDeploy prints the one-line outcome of a deploy stream and picks
// the exit status.
func finishDeploy(g *globals, what string, start time.Time, res deploy.Event, err error) error {
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			fmt.Fprintf(g.stderr, "%s failed after %s: %s\n", what, time.Since(start).Round(10*time.Millisecond), ae.Msg)
			code := ExitFailed
			if ae.Kind == api.KindConfig || ae.Kind == api.KindUsage {
				code = ExitUsage
			}
			return &silentError{code: code, err: err}
		}
		return err
	}
	if res.Type == "preview" {
		fmt.Fprintf(g.stdout, "%s: %s is in preview; `cutover promote` or `cutover abort`\n", what, res.Release)
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
			fmt.Fprintf(w, "  ✓ %-8s %7s  %s\n", ev.Step, fmtMS(ev.DurationMS), ev.Message)
		case "failed":
			fmt.Fprintf(w, "  ✗ %-8s %7s  %s\n", ev.Step, fmtMS(ev.DurationMS), ev.Message)
		default:
			fmt.Fprintf(w, "  - %-8s %7s  %s\n", ev.Step, ev.Status, ev.Message)
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
