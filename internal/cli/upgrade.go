package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/keeper"
)

func init() { register(newUpgradeCmd) }

func newUpgradeCmd(g *globals) *cobra.Command {
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Replace the running daemon with the binary now installed, without a failed request",
		Long: `Replace the running daemon with the cutover binary now at the path
'cutover serve' was started from (install the new binary there first: rename
it over the old one, or swap the symlink). The app's instances are not
touched: the new daemon adopts the same processes.

The keeper of 'cutover serve' starts the new daemon with the same listening
sockets; once it has read its config and opened the state, the old daemon
stops supervising and hands over, the new one adopts the instances and
starts accepting, and the old one finishes its requests in flight and exits
(TCP ports: once its open connections ended, each at most its port's
drain_timeout). Prints old pid/version → new pid/version. SIGHUP to the keeper (systemd's
ExecReload) does the same.

If the new binary cannot start — a config it refuses, a crash, not ready
within 60 s — it is killed and the old daemon serves and supervises on; this
command says why and exits 1.

An upgrade while a deploy runs (or waits for promote/abort) is refused, exit
1: upgrade once it finished, or abort it. A daemon started with
'cutover serve --no-keeper' cannot be upgraded in place.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			progress := func(s string) {
				if !asJSON {
					fmt.Fprintln(g.stderr, s)
				}
			}
			res, err := keeper.Upgrade(ctx, cfg.DataDir, progress)
			if errors.Is(err, keeper.ErrNoKeeper) {
				return fmt.Errorf("%w: is `cutover serve` running for %s? (a daemon started with --no-keeper cannot be upgraded in place: restart it)", err, cfg.Path)
			}
			if err != nil {
				return fmt.Errorf("upgrade failed: %w", err)
			}
			if asJSON {
				return printJSON(g.stdout, res)
			}
			fmt.Fprintf(g.stdout, "upgraded: pid %d (%s) → pid %d (%s)\n", res.OldPID, res.OldVersion, res.NewPID, res.NewVersion)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON: old_pid, old_version, new_pid, new_version")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "give up waiting for the keeper's answer after this long")
	return cmd
}
