package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/migrate"
	"github.com/cutover/cutover/internal/release"
)

// printEvent renders progress of up and down for a human.
func printEvent(w io.Writer) func(migrate.Event) {
	return func(e migrate.Event) {
		verb := "applied"
		if e.Down {
			verb = "undone"
		}
		switch e.Kind {
		case migrate.EventLockWait:
			fmt.Fprintf(w, "waiting for the migration lock, held by %s\n", e.Holder)
		case migrate.EventStart:
			if e.Statement > 1 {
				fmt.Fprintf(w, "resuming %s at statement %d\n", e.Migration, e.Statement)
			}
		case migrate.EventRetry:
			fmt.Fprintf(w, "lock timeout in %s; retry %d in %s\n", e.Migration, e.Attempt, e.Wait)
		case migrate.EventDone:
			fmt.Fprintf(w, "%s  %s  (%s, %s)\n", verb, e.Migration, e.Migration.Phase, e.Duration.Round(time.Millisecond))
		}
	}
}

// printPlan writes what a dry run would do, with the SQL.
func printPlan(w io.Writer, verb string, ms []*migrate.Migration, down bool) {
	if len(ms) == 0 {
		fmt.Fprintln(w, "nothing to do")
		return
	}
	for _, m := range ms {
		s := m.Up
		if down {
			s = *m.Down
		}
		mode := "in a transaction"
		if s.NoTransaction {
			mode = "statement by statement, no transaction"
		}
		fmt.Fprintf(w, "would %s %s (%s, %s) from %s:\n", verb, m, m.Phase, mode, s.Path)
		for _, l := range strings.Split(strings.TrimRight(s.SQL, "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

func newMigrateUpCmd(g *globals, f *migrateFlags, phase migrate.Phase) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Apply pending expand migrations",
		Long: `Apply the pending expand migrations, in id order, under the migration lock.
Contract migrations are left for 'cutover migrate contract'. A failure stops
the run and says which statement of which file failed and what to do.`,
		Args: exactArgs(0),
	}
	if phase == migrate.Contract {
		cmd.Use = "contract"
		cmd.Short = "Apply pending contract migrations (only once the old release is stopped)"
		cmd.Long = `Apply the pending contract migrations, in id order, under the migration lock.
Run it only when no instance of the previous release is serving any more:
contract migrations remove what that release still uses. Pending expand
migrations must be applied first. Then [database] contract_command, if set,
runs in the live release's directory under the same lock, with the app's
[app.env] and the database URL in [database] url_env.`
	}
	var force bool
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t, err := f.resolve(g, true)
		if err != nil {
			return err
		}
		if phase == migrate.Contract && !dryRun && !force {
			if err := contractSafe(cmd.Context(), t.cfg, g.app); err != nil {
				return err
			}
		}
		command := ""
		if phase == migrate.Contract && t.cfg != nil {
			command = t.cfg.Database.ContractCommand
		}
		if _, err := os.Stat(t.dir); err == nil || command == "" {
			if err := runOrPlan(cmd.Context(), g, t, dryRun, false, fmt.Sprintf("no pending %s migrations", phase),
				func(ctx context.Context, r *migrate.Runner, set *migrate.Set) ([]*migrate.Migration, error) {
					return r.Pending(ctx, set, phase)
				},
				func(ctx context.Context, r *migrate.Runner, set *migrate.Set) (migrate.Result, error) {
					return r.Up(ctx, set, phase, printEvent(g.stdout))
				}); err != nil {
				return err
			}
		}
		if command == "" {
			if phase == migrate.Contract && !dryRun && t.cfg != nil {
				recordLiveSchema(cmd.Context(), g, t)
			}
			return nil
		}
		if dryRun {
			dir, _ := t.releaseDir()
			fmt.Fprintf(g.stdout, "would run database.contract_command %q in %s\n", command, dir)
			return nil
		}
		return runContractCommand(cmd.Context(), g, t, command)
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and the SQL without changing anything")
	if phase == migrate.Contract {
		cmd.Flags().BoolVar(&force, "force", false, "run even though the daemon reports a deploy in flight or instances of an older release")
	}
	return cmd
}

// contractSafe asks the daemon (when the config names one and it runs)
// whether old code may still be running: a deploy in flight, or instances
// of more than one release. Contract migrations remove what old code uses.
func contractSafe(ctx context.Context, cfg *config.Config, app string) error {
	if cfg == nil {
		return nil // migration runner only: no daemon to ask
	}
	st, err := api.NewClient(cfg.SocketPath()).App(app).Status(ctx)
	if errors.Is(err, api.ErrNoDaemon) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ask the daemon whether an old release still runs: %w (use --force to skip the check)", err)
	}
	if st.Deploy != nil {
		return fmt.Errorf("a %s is in flight (deploy #%d, step %s): contract migrations wait until the old release is gone; run again after it, or use --force", st.Deploy.Kind, st.Deploy.DeployID, st.Deploy.Step)
	}
	for _, in := range st.Instances {
		if in.Release != st.Active {
			return fmt.Errorf("instance %s of release %s still runs beside the live %s: contract migrations would remove what it uses; run again once it is gone, or use --force", in.ID, in.Release, st.Active)
		}
	}
	return nil
}

func newMigrateDownCmd(g *globals, f *migrateFlags) *cobra.Command {
	var dryRun bool
	var to string
	cmd := &cobra.Command{
		Use:   "down [N]",
		Short: "Undo the last N applied migrations (default 1), or all above --to ID",
		Long: `Undo applied migrations, newest first, with their down scripts: the last one
by default, the last N, or every one with an id above --to ID (--to 0 undoes
everything). Each down script runs in a transaction with the removal of its
version row, unless it is no-transaction.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var target migrate.DownTarget
			if len(args) == 1 {
				if to != "" {
					return usageErrorf("down takes N or --to ID, not both")
				}
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 {
					return usageErrorf("down N: want a positive number of migrations, got %q", args[0])
				}
				target.Steps = n
			}
			if to != "" {
				id, err := migrate.ParseVersion(to)
				if err != nil || id.Repeatable() {
					return usageErrorf("--to: want a migration id such as 20240101120000 or 1.1 (0 for everything), got %q", to)
				}
				target.To = &id
			}
			t, err := f.resolve(g, true)
			if err != nil {
				return err
			}
			return runOrPlan(cmd.Context(), g, t, dryRun, true, "nothing to undo",
				func(ctx context.Context, r *migrate.Runner, set *migrate.Set) ([]*migrate.Migration, error) {
					return r.PlanDown(ctx, set, target)
				},
				func(ctx context.Context, r *migrate.Runner, set *migrate.Set) (migrate.Result, error) {
					return r.Down(ctx, set, target, printEvent(g.stdout))
				})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and the SQL without changing anything")
	cmd.Flags().StringVar(&to, "to", "", "undo every applied migration with an id above this one (0: all)")
	return cmd
}

// runOrPlan opens the migrations of t and either prints the plan and its
// SQL (dryRun, without writing anything) or runs it, saying none when
// nothing was to do. down selects the down scripts in the plan.
func runOrPlan(ctx context.Context, g *globals, t migrateTarget, dryRun, down bool, none string,
	plan func(context.Context, *migrate.Runner, *migrate.Set) ([]*migrate.Migration, error),
	run func(context.Context, *migrate.Runner, *migrate.Set) (migrate.Result, error)) error {
	r, set, err := t.open(ctx, dryRun)
	if err != nil {
		return err
	}
	defer r.Close()
	if dryRun {
		ms, err := plan(ctx, r, set)
		if err != nil {
			return err
		}
		verb := "apply"
		if down {
			verb = "undo"
		}
		printPlan(g.stdout, verb, ms, down)
		return nil
	}
	res, err := run(ctx, r, set)
	if err != nil {
		return err
	}
	if len(res.Done) == 0 {
		fmt.Fprintln(g.stdout, none)
	}
	return nil
}

// runContractCommand runs [database] contract_command in the live release
// under the migration lock, then records the schema the live release now
// runs on (see docs/migrations.md, "Rollbacks that know the schema").
func runContractCommand(ctx context.Context, g *globals, t migrateTarget, command string) error {
	cfg := t.cfg
	dir, live := t.releaseDir()
	env := os.Environ()
	for k, v := range cfg.App.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, cfg.Database.URLEnv+"="+t.opts.URL, "CUTOVER_RELEASE="+t.opts.Release, "CUTOVER_APP="+cfg.App.Name)
	r, err := migrate.Open(ctx, t.opts)
	if err != nil {
		return err
	}
	defer r.Close()
	var code int
	err = r.Locked(ctx, printEvent(g.stdout), func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, cfg.Database.CommandTimeout.Duration)
		defer cancel()
		var err error
		_, code, err = release.RunShell(cctx, "contract_command", dir, env, command, func(stream, line string) {
			if stream == "stderr" {
				fmt.Fprintln(g.stderr, line)
			} else {
				fmt.Fprintln(g.stdout, line)
			}
		}, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("database.contract_command %q: %w", command, err)
	}
	if code != 0 {
		return fmt.Errorf("database.contract_command %q exited with status %d", command, code)
	}
	fmt.Fprintf(g.stdout, "database.contract_command %q ok\n", command)
	if live {
		recordLiveSchema(ctx, g, t)
	}
	return nil
}

// recordLiveSchema records the schema the live release runs on after a
// contract changed it, so that a later rollback to it is checked against
// this schema, not the one it went live on.
func recordLiveSchema(ctx context.Context, g *globals, t migrateTarget) {
	if _, live := t.releaseDir(); !live {
		return
	}
	if err := deploy.RecordSchema(ctx, t.cfg, t.opts.Release); err != nil {
		fmt.Fprintf(g.stderr, "warning: %v\n", err)
	}
}
