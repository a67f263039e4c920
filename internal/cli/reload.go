package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/keeper"
)

func init() { register(newReloadCmd) }

func newReloadCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Apply cutover.toml's apps and [proxy] now, without a failed request",
		Long: `Apply cutover.toml as it is now to the running daemon: apps added to the
file ([apps.NAME]) start serving their hosts, apps removed from it stop (their
instances are stopped; their data stays under <data_dir>/apps/NAME, so adding
the app back finds its releases), and [proxy] changes apply — except
proxy.listen and proxy.preview_listen: the sockets are the keeper's, so a
new address needs a restart of 'cutover serve'. An app's own
sections ([apps.NAME.deploy], [app], …) need no reload: each deploy reads
them as it starts.

The file is checked first; a mistake is reported with its line and nothing
changes (exit 2). Then the keeper of 'cutover serve' starts a fresh daemon
with the same listening sockets, which reads the file and adopts every
running instance, while the old daemon hands over and finishes its requests
in flight — the same handover as 'cutover upgrade', so the other apps serve
throughout. Refused while a deploy runs (exit 1).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := keeper.Upgrade(ctx, cfg.DataDir, func(s string) { fmt.Fprintln(g.stderr, s) })
			if errors.Is(err, keeper.ErrNoKeeper) {
				return fmt.Errorf("%w: is `cutover serve` running for %s? (a daemon started with --no-keeper reloads only by a restart)", err, cfg.Path)
			}
			if err != nil {
				return fmt.Errorf("reload failed, the daemon serves on with the config it had: %w", err)
			}
			fmt.Fprintf(g.stdout, "reloaded %s: apps %s (daemon pid %d → %d)\n", cfg.Path, strings.Join(cfg.AppNames(), ", "), res.OldPID, res.NewPID)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "give up waiting for the keeper's answer after this long")
	return cmd
}
