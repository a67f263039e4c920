package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/demo"
)

func init() { register(newDemoCmd) }

func newDemoCmd(g *globals) *cobra.Command {
	opts := demo.Options{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch a whole deploy story run in a temp dir: deploys, a broken release, a rollback, under load",
		Long: `Run cutover's whole story with nothing installed, in a temporary directory:

  1. start the daemon (cutover serve) with the built-in demo app;
  2. deploy v1 and put it under load (real HTTP requests, keep-alive and
     fresh connections);
  3. deploy v2 under load;
  4. deploy a broken v3 whose instances die at boot: the deploy aborts with
     their log lines, and v2 keeps serving;
  5. roll back to v1;
  6. switch to the canary strategy and ship a v4 that passes its health
     checks but fails 30% of real requests: the proxy catches it at 10% of
     traffic and rolls it back by itself;
  7. print what every request saw: requests, failures, p50/p99 latency and
     which version answered, per step.

It exits 0 only if no request failed outside the bad canary, and the canary
cost under 2% of all requests. --keep leaves the daemon and the app running
and prints their addresses.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Out = g.stdout
			_, err := demo.Run(cmd.Context(), opts)
			return err
		},
	}
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "leave the daemon and the app running at the end")
	cmd.Flags().IntVar(&opts.Rate, "rate", 200, "requests per second of the load")
	cmd.Flags().DurationVar(&opts.Pause, "pause", 2*time.Second, "how long each steady phase lasts")
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "work in this directory instead of a new temp dir (kept afterwards)")
	return cmd
}
