package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { register(newStopCmd) }

func newStopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the app's instances and the daemon (takes the app down)",
		Long: `Stop every instance of the app gracefully (app.stop_signal, then a kill of
the whole process group after app.stop_timeout), then the daemon. Unlike
SIGTERM to 'cutover serve' — which leaves the app running for the next
daemon — this takes the app down. The next 'cutover serve' starts the live
release again.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Stop(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "stopped the app; the daemon exits (the next `cutover serve` starts the live release again)")
			return nil
		},
	}
}
