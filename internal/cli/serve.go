package cli

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/daemon"
)

func init() { register(newServeCmd) }

func newServeCmd(g *globals) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: the proxy, the app's instances and the admin API",
		Long: `Run the cutover daemon in the foreground: the reverse proxy on proxy.listen,
the supervisor of the app's instances, and the admin API on
<data_dir>/cutover.sock (mode 0600). State lives in <data_dir>/state.db.

At start the daemon brings back the live release: instances still running
from a previous daemon are adopted (the app never stopped), missing ones are
started, leftovers of an interrupted deploy are stopped.

SIGTERM or SIGINT stop the daemon but NOT the app: its instances run in
their own process groups and the next 'cutover serve' re-adopts them, so a
restart costs no more than the restart itself. Use 'cutover stop' to take
the app down on purpose.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return daemon.Run(cmd.Context(), daemon.Options{Config: cfg, Logger: logger})
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log debug details")
	return cmd
}
