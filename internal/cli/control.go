package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
)

// controlRefusals is said once in each control command's help: the
// deploy answers every action in every step, honoured or refused.
const controlRefusals = `
The daemon answers at once: what will happen, or why the action is refused
in the step the deploy is in (exit status 1), e.g. "abort refused (deploy
#7, step drain): the new release R is live; ` + "`cutover rollback`" + ` goes back".
See docs/strategies.md for every step and action.`

func init() {
	register(func(g *globals) *cobra.Command {
		return newControlCmd(g, deploy.ActionPromote, "Continue the deploy in flight: end a preview, or skip remaining canary steps, batches or the watch",
			`Continue the deploy in flight:
  - in preview: move traffic to the previewed release (by the configured strategy);
  - during canary steps or rolling batches: go to 100% now;
  - during the watch: end it and stop the old release now.
It then follows the deploy to its end, like 'cutover deploy'. Refused
elsewhere: a blue-green deploy switches as soon as its instances are
healthy, and there is nothing to promote before the boot or after the
switch.`+controlRefusals)
	})
	register(func(g *globals) *cobra.Command {
		return newControlCmd(g, deploy.ActionAbort, "Stop the deploy in flight and go back to the release that was live",
			`Stop the deploy in flight, in any step before the new release is live for
good: before the boot nothing more runs (a git checkout, test or build is
stopped; expand migrations under way finish first: a migration is never cut
in half); booting instances are stopped at once; a preview's instances are stopped; during canary steps, rolling
batches or the watch, all traffic goes back to the release that was live
before (rebooting its instances if a rolling deploy had stopped some), and
the new release is drained and stopped. Refused once the switch is done
(drain, contract, finish): use 'cutover rollback'. Exit status 0 when the
abort took effect.`+controlRefusals)
	})
	register(func(g *globals) *cobra.Command {
		return newControlCmd(g, deploy.ActionPause, "Hold the deploy in flight before traffic moves, or at its current canary step, batch or watch",
			`Hold the deploy in flight: during canary steps, rolling batches, a preview
or the watch, where it is (the weights stay, the step's clock stops); in
the steps before traffic moves (prepare, expand, boot, …), when the step
under way ends, e.g. a blue-green deploy waits after its boot, before the
switch. 'cutover resume' continues; promote and abort still work. Refused
once traffic has moved for good.`+controlRefusals)
	})
	register(func(g *globals) *cobra.Command {
		return newControlCmd(g, deploy.ActionResume, "Continue a paused deploy", `Continue a deploy held by 'cutover pause'. Refused when it is not paused.`+controlRefusals)
	})
}

func newControlCmd(g *globals, action deploy.Action, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   action.String(),
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
			if res.Type == "" {
				// Refused, or nothing in flight: the deploy did not take
				// it, and the error says why.
				return err
			}
			switch action {
			case deploy.ActionPause, deploy.ActionResume:
				fmt.Fprintln(g.stdout, res.Message)
				return nil
			case deploy.ActionAbort:
				var ae *api.Error
				if errors.As(err, &ae) && ae.Kind == api.KindAborted && res.Type == "result" {
					fmt.Fprintf(g.stdout, "aborted: %s\n", res.Message)
					return nil
				}
			}
			return finishDeploy(g, action.String(), start, res, err)
		},
	}
}
