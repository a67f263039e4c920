package cli

import (
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newStatusCmd) }

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the live release, its instances and any deploy in flight",
		Long: `Show the live release, every instance (pid, port, health, restarts, last
exit), the deploy in flight if any, and per-release traffic counters of the
proxy since the daemon started. --json prints the same as JSON.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, st)
			}
			active := st.Active
			if active == "" {
				active = "(none yet — run `cutover deploy PATH`)"
			}
			fmt.Fprintf(g.stdout, "app:     %s\nlisten:  %s\nlive:    %s\n", st.App, st.Listen, active)
			if st.Deploy != nil {
				fmt.Fprintf(g.stdout, "deploy:  #%d %s of %s, step %s, for %s\n", st.Deploy.DeployID, st.Deploy.Kind,
					st.Deploy.Release, st.Deploy.Step, time.Since(st.Deploy.StartedAt).Round(time.Second))
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
				if in.LastExit != "" {
					last = fmt.Sprintf("%s (%s ago)", in.LastExit, time.Since(in.LastExitAt).Round(time.Second))
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%s\n", in.ID, in.PID, in.Port, in.State, h, in.Restarts, last)
			}
			tw.Flush()
			if len(st.Traffic) > 0 {
				fmt.Fprintln(g.stdout)
				tw = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RELEASE\tREQUESTS\t5XX\tCONN ERRORS\tIN FLIGHT")
				rels := make([]string, 0, len(st.Traffic))
				for r := range st.Traffic {
					rels = append(rels, r)
				}
				sort.Strings(rels)
				for _, r := range rels {
					t := st.Traffic[r]
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", r, t.Requests, t.Status5xx, t.ConnErrors, t.InFlight)
				}
				tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
