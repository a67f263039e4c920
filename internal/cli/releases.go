package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api"
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
			if g.app == "" {
				// A daemon with several apps: each of them.
				if names, err := c.Apps(cmd.Context()); err == nil && len(names) > 1 {
					all := map[string][]api.Release{}
					for i, n := range names {
						rels, err := c.App(n).Releases(cmd.Context())
						if err != nil {
							return err
						}
						all[n] = rels
						if !asJSON {
							if i > 0 {
								fmt.Fprintln(g.stdout)
							}
							fmt.Fprintf(g.stdout, "app %s:\n", n)
							printReleases(g, rels)
						}
					}
					if asJSON {
						return printJSON(g.stdout, all)
					}
					return nil
				}
			}
			rels, err := c.Releases(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, rels)
			}
			printReleases(g, rels)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (with each release's metadata: source, ref, commit, who, config digest, environment keys with value digests)")
	cmd.AddCommand(&cobra.Command{
		Use:   "prune",
		Short: "Remove old releases beyond release.keep now",
		Long: `Remove release directories beyond release.keep: first those that never went
live (failed, or prepared and never deployed), then the oldest. The live
release, the rollback target (the one live before it) and any release with
running instances are never removed. Deploys prune by themselves at their end.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.client()
			if err != nil {
				return err
			}
			removed, err := c.Prune(cmd.Context())
			if err != nil {
				return err
			}
			if len(removed) == 0 {
				fmt.Fprintln(g.stdout, "nothing to prune")
			}
			for _, id := range removed {
				fmt.Fprintf(g.stdout, "removed %s\n", id)
			}
			return nil
		},
	})
	return cmd
}

// printReleases prints one app's releases.
func printReleases(g *globals, rels []api.Release) {
	if len(rels) == 0 {
		fmt.Fprintln(g.stdout, "no releases yet; ship one with `cutover deploy PATH`")
		return
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RELEASE\tSTATUS\tCREATED\tBY\tENV\tSOURCE")
	for _, r := range rels {
		mark := ""
		if r.Current {
			mark = " (current)"
		}
		by, env := "-", "-"
		if r.Meta != nil {
			by = r.Meta.CreatedBy
			if r.Meta.EnvDigest != "" {
				env = fmt.Sprintf("%d vars %.24s", len(r.Meta.Env), r.Meta.EnvDigest)
			}
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, mark, r.CreatedAt.Local().Format(time.DateTime), by, env, r.Source)
	}
	tw.Flush() //nolint:errcheck // stdout
}
