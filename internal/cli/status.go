package cli

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/tcpproxy"
)

func init() { register(newStatusCmd) }

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON, watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the live release, its instances and any deploy in flight",
		Long: `Show the live release, every instance (pid, port, health, restarts, last
exit; both carry over when a restarted daemon adopts the instance), the
deploy in flight if any, and per-release traffic counters of the
proxy since the daemon started (a release retired more than five minutes ago
is no longer listed). --json prints the same as JSON.

A "rebuilt:" line says what the daemon had to rebuild or found at start
(a lost or damaged state.db, an instance nothing recorded), until the next
deploy succeeds; a "DEGRADED:" line says why deploys are refused now and
what to do.

Certificates the daemon obtains from an ACME CA ([tls]) are listed last,
one line per host name: issued and when it expires, or what it waits for
and why the last attempt failed.

--watch redraws every --interval (default 1s), for every app of the daemon
or the one --app names: the live release and any deploy in flight with
its step, each release's weight, req/s and error rate since the last
redraw, p50/p99 over the last minute and requests in flight, the
instances (health, restarts, age), and the last deploys with their
outcome. On a terminal it redraws in place; piped, it prints one block per
interval, blocks separated by a blank line. --watch --json prints one JSON
object per interval, a line each. Ctrl-C ends it; so does a daemon that
has not answered for 5 s (exit 1, saying so).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("interval") && !watch {
				return usageErrorf("--interval goes with --watch: cutover status --watch --interval %s", interval)
			}
			if watch && interval < 100*time.Millisecond {
				return usageErrorf("--interval %s is too short: 100ms at least", interval)
			}
			c, _, err := g.client()
			if err != nil {
				return err
			}
			if watch {
				w := &watcher{c: c, app: g.app, interval: interval, asJSON: asJSON,
					terminal: isTerminal(g.stdout), out: g.stdout, now: time.Now, giveUp: watchGiveUp}
				return w.run(cmd.Context())
			}
			if g.app == "" {
				// A daemon with several apps: all of them.
				if names, err := c.Apps(cmd.Context()); err == nil && len(names) > 1 {
					all := make([]deploy.Status, 0, len(names))
					for _, n := range names {
						st, err := c.App(n).Status(cmd.Context())
						if err != nil {
							return err
						}
						all = append(all, st)
					}
					if asJSON {
						return printJSON(g.stdout, all)
					}
					for i, st := range all {
						if i > 0 {
							fmt.Fprintln(g.stdout)
						}
						printAppStatus(g, st)
					}
					printCertificates(cmd.Context(), g, c)
					return nil
				}
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, st)
			}
			printAppStatus(g, st)
			printCertificates(cmd.Context(), g, c)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (with --watch: one object a line)")
	cmd.Flags().BoolVar(&watch, "watch", false, "redraw every --interval until Ctrl-C")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often --watch redraws")
	return cmd
}

// printAppStatus prints one app's status.
func printAppStatus(g *globals, st deploy.Status) {
	active := st.Active
	if active == "" {
		active = "(none yet — run `cutover deploy PATH`)"
	}
	fmt.Fprintf(g.stdout, "app:     %s\nlisten:  %s\nlive:    %s\n", st.App, st.Listen, active)
	if st.Degraded != "" {
		fmt.Fprintf(g.stdout, "DEGRADED: %s\n", st.Degraded)
	}
	for _, n := range st.Recovered {
		fmt.Fprintf(g.stdout, "rebuilt: %s\n", n)
	}
	if d := st.Deploy; d != nil {
		step := d.Step
		if d.Detail != "" {
			step += " (" + d.Detail + ")"
		}
		if d.Paused {
			step += ", PAUSED"
		}
		fmt.Fprintf(g.stdout, "deploy:  #%d %s of %s, step %s, for %s\n", d.DeployID, d.Kind,
			d.Release, step, time.Since(d.StartedAt).Round(time.Second))
		if d.PreviewToken != "" {
			fmt.Fprintf(g.stdout, "preview: token %s (header X-Cutover-Preview, cookie or ?cutover_preview=)\n", d.PreviewToken)
		}
	}
	fmt.Fprintln(g.stdout)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tPID\tPORT\tSTATE\tHEALTH\tRESTARTS\tLAST EXIT")
	for _, in := range st.Instances {
		h := "unhealthy"
		if in.Healthy {
			h = "healthy"
		}
		last := "-"
		switch {
		case in.LastExit != "" && !in.LastExitAt.IsZero():
			last = fmt.Sprintf("%s (%s ago)", in.LastExit, time.Since(in.LastExitAt).Round(time.Second))
		case in.LastExit != "":
			last = in.LastExit + " (under an earlier daemon)" // adopted: when is not recorded
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%s\n", in.ID, in.PID, in.Port, in.State, h, in.Restarts, last)
	}
	tw.Flush()
	printTCPStatus(g, st.TCP)
	if len(st.Recent) > 0 || len(st.Weights) > 0 {
		fmt.Fprintln(g.stdout)
		tw = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RELEASE\tWEIGHT\tREQ/S (1m)\tERRORS (1m)\tP99 (1m)\tREQUESTS\tIN FLIGHT")
		seen := map[string]bool{}
		var rels []string
		for r := range st.Recent {
			seen[r] = true
			rels = append(rels, r)
		}
		for r := range st.Weights {
			if !seen[r] {
				rels = append(rels, r)
			}
		}
		sort.Strings(rels)
		total := 0
		for _, w := range st.Weights {
			total += w
		}
		for _, r := range rels {
			w, t := st.Recent[r], st.Traffic[r]
			share := 0
			if total > 0 {
				share = st.Weights[r] * 100 / total
			}
			fmt.Fprintf(tw, "%s\t%d%%\t%.1f\t%.2f%%\t%s\t%d\t%d\n", r, share,
				float64(w.Requests)/deploy.RecentWindow.Seconds(), 100*w.ErrorRate, w.P99.Round(100*time.Microsecond), t.Requests, t.InFlight)
		}
		tw.Flush()
	}
}

// printCertificates prints the daemon's ACME certificate lines, if any.
// A daemon that cannot say (an older one) prints nothing.
func printCertificates(ctx context.Context, g *globals, c *api.Client) {
	lines, err := c.Certificates(ctx)
	if err != nil || len(lines) == 0 {
		return
	}
	fmt.Fprintln(g.stdout)
	fmt.Fprintln(g.stdout, "certificates (ACME):")
	for _, l := range lines {
		fmt.Fprintln(g.stdout, "  "+l)
	}
}

// printTCPStatus prints the app's TCP ports: which instance takes new
// connections, and each instance's port, health and open connections.
func printTCPStatus(g *globals, ports []tcpproxy.PortStatus) {
	for _, p := range ports {
		next := p.Next
		if next == "" {
			next = "(none: no instance routed)"
		}
		fmt.Fprintf(g.stdout, "\ntcp %s (%s, balance %s, health %s): new connections → %s\n", p.Listen, p.PortEnv, p.Balance, p.Health, next)
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  INSTANCE\tADDR\tHEALTH\tROUTED\tCONNS")
		for _, b := range p.Instances {
			h, r := "unhealthy", "no"
			if b.Healthy {
				h = "healthy"
			}
			if b.Routed {
				r = "yes"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\n", b.ID, b.Addr, h, r, b.Conns)
		}
		tw.Flush()
	}
}
