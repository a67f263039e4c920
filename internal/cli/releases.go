package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newReleasesCmd) }

func newReleasesCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "List releases, oldest first, with their status",
		Long: `List every release cutover knows, oldest first: live (serving now),
retired (was live; a rollback target while on disk), failed (its deploy
aborted before the switch), prepared, or pruned (removed by retention).
--json prints the same as JSON.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.client()
			if err != nil {
				return err
			}
			rels, err := c.Releases(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, rels)
			}
			if len(rels) == 0 {
				fmt.Fprintln(g.stdout, "no releases yet; ship one with `cutover deploy PATH`")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RELEASE\tSTATUS\tCREATED\tSOURCE")
			for _, r := range rels {
				mark := ""
				if r.Current {
					mark = " (current)"
				}
				fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\n", r.ID, r.Status, mark, r.CreatedAt.Local().Format(time.DateTime), r.Source)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
