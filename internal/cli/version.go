package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/demoapp"
)

func init() {
	register(newVersionCmd)
	register(newDemoAppCmd)
}

// Version is the release of cutover; set at build time with
// -ldflags "-X github.com/cutover/cutover/internal/cli.Version=v1.2.3".
var Version = "dev"

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print cutover's version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = " " + s.Value
					}
				}
			}
			fmt.Fprintf(g.stdout, "cutover %s%s %s/%s %s\n", Version, rev, runtime.GOOS, runtime.GOARCH, runtime.Version())
			return nil
		},
	}
}

// newDemoAppCmd is the demo web app built into the binary, so `cutover
// demo` and the tests need nothing installed. Hidden: users run `demo`.
func newDemoAppCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "demo-app",
		Short:  "Run the built-in demo web app on $PORT",
		Hidden: true,
		Args:   exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return demoapp.Run(cmd.Context(), g.stdout, g.stderr)
		},
	}
	var contract bool
	migrateCmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the demo app's own migrations (./db/NNN_name.sql) to $DATABASE_URL",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return demoapp.Migrate(cmd.Context(), g.stdout, g.stderr, contract)
		},
	}
	migrateCmd.Flags().BoolVar(&contract, "contract", false, "apply ./db/contract/NNN_name.sql instead")
	cmd.AddCommand(migrateCmd)
	return cmd
}
