package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/deploy"
)

func init() {
	register(func(g *globals) *cobra.Command {
		return newControlCmd(g, deploy.ActionPromote, "Continue the deploy in flight: end a preview, or skip remaining canary steps, batches or the watch",
			`Continue the deploy in flight:
  - in preview: move traffic to the previewed release (by the configured strategy);
  - during canary steps or rolling batches: go to 100% now;
  - during the watch: end it and stop the old release now.
It then follows the deploy to its end, like 'cutover deploy'.`)
	})
	register(func(g *globals) *cobra.Command {
		return newControlCmd(g, deploy.ActionAbort, "Stop the deploy in flight and go back to the release that was live",
			`Stop the deploy in flight: a preview's instances are stopped; during canary
steps, rolling batches or the watch, all traffic goes back to the release
that was live before (rebooting its instances if a rolling deploy had
stopped some), and the new release is drained and stopped. Exit status 0
when the abort took effect.`)
	})
	register(func(g *globals) *cobra.Command {
		return newControlCmd(g, deploy.ActionPause, "Hold a rolling or canary deploy at its current step",
			`Hold the deploy in flight where it is: the current weights stay, the step's
clock stops. 'cutover resume' continues; promote and abort still work.`)
	})
	register(func(g *globals) *cobra.Command {
		return newControlCmd(g, deploy.ActionResume, "Continue a paused deploy", `Continue a deploy held by 'cutover pause'.`)
	})
}

func newControlCmd(g *globals, action, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   action,
		Short: short,
		Long:  long,
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.client()
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := c.Control(cmd.Context(), action, func(ev deploy.Event) { renderEvent(g.stdout, ev) })
			switch action {
			case deploy.ActionPause, deploy.ActionResume:
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "%sd the deploy in flight\n", action)
				return nil
			case deploy.ActionAbort:
				if err != nil && res.Type == "result" {
					fmt.Fprintf(g.stdout, "aborted: %s\n", res.Message)
					return nil
				}
			}
			return finishDeploy(g, action, start, res, err)
		},
	}
}
