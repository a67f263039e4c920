package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/keeper"
)

func init() { register(newServeCmd) }

func newServeCmd(g *globals) *cobra.Command {
	var verbose, noKeeper bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: the proxy, the app's instances and the admin API",
		Long: `Run the cutover daemon in the foreground: the reverse proxy on proxy.listen,
the supervisor of the app's instances, and the admin API on
<data_dir>/cutover.sock (mode 0600). State lives in <data_dir>/state.db.

'cutover serve' is two processes: a small keeper, which holds the proxy and
preview sockets and <data_dir>/keeper.lock, and the daemon, its child, which
does the work. The keeper starts the daemon again at once if it dies (with a
backoff if it keeps dying), so even a kill -9 of the daemon refuses no
connection: clients wait in the socket's backlog meanwhile. 'cutover upgrade'
(or SIGHUP to the keeper) replaces the daemon with the binary now at the path
'cutover serve' was started from, without a failed request.
<data_dir>/keeper.lock holds the keeper's pid, <data_dir>/daemon.lock the
daemon's.

At start the daemon brings back the live release: instances still running
from a previous daemon are adopted (the app never stopped), missing ones are
started, leftovers of an interrupted deploy are stopped.

SIGUSR1 to the keeper (or the daemon) opens the access log ([log] access)
again, after logrotate renamed it.

SIGTERM or SIGINT to the keeper stop the daemon but NOT the app: its
instances run in their own process groups and the next daemon re-adopts
them. Use 'cutover stop' to take the app down on purpose; the keeper then
exits too. A daemon that exits with status 0 is not restarted.

With systemd socket activation the keeper takes the passed sockets and hands
them on (see docs/deploy.md). --no-keeper runs the daemon alone, as one
process: it cannot be upgraded in place and its sockets close with it.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			link, err := keeper.LinkFromEnv()
			if err != nil {
				return err
			}
			keeperDir := os.Getenv(keeper.EnvDataDir)
			os.Unsetenv(keeper.EnvDataDir)
			cfg, err := g.loadConfig()
			if err == nil && link != nil && keeperDir != "" && keeperDir != cfg.DataDir {
				err = &UsageError{Err: fmt.Errorf("data_dir in %s is now %s, but `cutover serve` started with %s: restart `cutover serve` to move the data directory", cfg.Path, cfg.DataDir, keeperDir)}
			}
			if err != nil {
				if link != nil {
					// Tell the keeper why, for `cutover upgrade` to show.
					link.Send(keeper.MsgFailed, err.Error()) //nolint:errcheck // the exit says enough
				}
				return err
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if link != nil || noKeeper {
				if link != nil {
					// SIGHUP is the keeper's (upgrade); a hangup of the
					// terminal must not kill the daemon. Caught, not
					// ignored: an ignored signal stays ignored in every
					// process the daemon starts (the app's instances,
					// hooks, builds), while a caught one is reset to its
					// default at their exec.
					signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
				}
				return daemon.Run(cmd.Context(), daemon.Options{Config: cfg, Logger: logger, Keeper: link, Version: Version})
			}
			exe, err := keeper.ResolveExe(os.Args[0])
			if err != nil {
				return err
			}
			err = keeper.Run(cmd.Context(), keeper.Options{
				Exe:           exe,
				Args:          os.Args[1:],
				DataDir:       cfg.DataDir,
				ProxyListen:   cfg.Proxy.Listen,
				PreviewListen: cfg.Proxy.PreviewListen,
				TLSListen:     cfg.Proxy.TLSListen,
				TCPListen:     tcpListens(cfg),
				ConfigPath:    cfg.Path,
				Logger:        logger,
			})
			var de *keeper.DaemonError
			if errors.As(err, &de) {
				// The daemon printed its error on this stderr already.
				return &silentError{code: ExitFailed, err: err}
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log debug details")
	cmd.Flags().BoolVar(&noKeeper, "no-keeper", false, "run the daemon as a single process, without the keeper (no in-place upgrade, no restart)")
	return cmd
}

// tcpListens returns the listen addresses of every app's TCP ports.
func tcpListens(cfg *config.Config) []string {
	var out []string
	for _, u := range cfg.Units() {
		for _, t := range u.App.TCP {
			out = append(out, t.Listen)
		}
	}
	return out
}
