package cli

import (
	"github.com/spf13/cobra"
)

func init() { register(newLogsCmd) }

func newLogsCmd(g *globals) *cobra.Command {
	var (
		follow   bool
		lines    int
		instance string
	)
	cmd := &cobra.Command{
		Use:   "logs [RELEASE]",
		Short: "Print the app's logs (default: the live release), -f to follow",
		Long: `Print the last lines of each instance log of a release (default: the live
one), prefixed by the instance when there are several. Logs are files under
<data_dir>/logs/<release>/<instance>.log, capped by app.log_max_size.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.client()
			if err != nil {
				return err
			}
			release := ""
			if len(args) == 1 {
				release = args[0]
			}
			return c.Logs(cmd.Context(), release, instance, lines, follow, g.stdout)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&lines, "lines", "n", 100, "how many last lines of each log")
	cmd.Flags().StringVar(&instance, "instance", "", "only this instance")
	return cmd
}
