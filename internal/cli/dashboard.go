package cli

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"
)

func init() { register(newDashboardCmd) }

func newDashboardCmd(g *globals) *cobra.Command {
	var noOpen bool
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print a one-time login URL of the live dashboard, and open it",
		Long: `Ask the daemon for a one-time login URL of its live dashboard (every app's
releases, weights, instances, req/s, error rate, p50/p99, the deploy's steps
as they happen, and pause/resume/promote/abort/rollback buttons), print it,
and open it with xdg-open when a display is there (DISPLAY or
WAYLAND_DISPLAY). The URL logs one browser in, once, within 60 s; the
browser then keeps a session cookie.

With [dashboard] listen set, the URL is on that address; without it, the
daemon opens the dashboard on an ephemeral loopback port (127.0.0.1) and
keeps it open until it exits. From another machine, forward the port:
ssh -L PORT:127.0.0.1:PORT host. See docs/observability.md#dashboard.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.client()
			if err != nil {
				return err
			}
			url, err := c.DashboardLogin(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, url)
			fmt.Fprintln(g.stderr, "cutover: the URL logs one browser in, once, within 60 s")
			if noOpen || (os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "") {
				return nil
			}
			xdg, err := exec.LookPath("xdg-open")
			if err != nil {
				return nil
			}
			open := exec.Command(xdg, url)
			if err := open.Start(); err != nil {
				fmt.Fprintf(g.stderr, "cutover: xdg-open: %v; open the URL above yourself\n", err)
				return nil
			}
			go open.Wait() //nolint:errcheck // the browser's business
			return nil
		},
	}
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "print the URL only; do not run xdg-open")
	return cmd
}
