package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/migrate"
	"github.com/cutover/cutover/internal/migrate/lint"
)

func init() { register(newMigrateCmd) }

// migrateFlags are the flags every migrate subcommand shares; they
// override [database] of the config file, so that no config file is
// needed when --database and --dir are given.
type migrateFlags struct {
	database string
	dir      string
	format   string
	table    string
	release  string
}

// migrateTarget is the resolved database, directory and runner options.
type migrateTarget struct {
	opts migrate.Options
	dir  string
	cfg  *config.Config // nil when run with --database and --dir only
}

func newMigrateCmd(g *globals) *cobra.Command {
	f := &migrateFlags{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Run and inspect database migrations (expand before a deploy, contract after)",
		Long: `Run versioned SQL migrations against PostgreSQL or SQLite, exactly once each,
under a lock, in id order.

A migration is "expand" unless its file starts with "-- cutover:phase contract".
Expand migrations keep the running release working and run before new code
boots (cutover migrate up, or the deploy). Contract migrations remove what only
the old release needed and run once it is gone (cutover migrate contract).

The database and directory come from [database] in cutover.toml; --database and
--dir override them, so with both no config file is needed:

  cutover migrate status --database sqlite:///var/lib/app/app.db --dir migrations

Without --dir, the directory is [database] dir inside the live release (the
"current" link under data_dir), or beside cutover.toml when nothing is
deployed yet. See docs/migrations.md.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.database, "database", "", "database URL, postgres://… or sqlite:///path (default: [database] url)")
	pf.StringVar(&f.dir, "dir", "", "migrations directory (default: [database] dir of the live release)")
	pf.StringVar(&f.format, "format", "", "file format: auto, native, golang-migrate, goose, flyway (default: [database] format, else auto)")
	pf.StringVar(&f.table, "table", "", "version table (default: [database] table, else cutover_migrations)")
	pf.StringVar(&f.release, "release", "", "release name recorded with applied migrations (default: the live release, else \"cli\")")
	cmd.AddCommand(
		newMigrateStatusCmd(g, f),
		newMigrateUpCmd(g, f, migrate.Expand),
		newMigrateUpCmd(g, f, migrate.Contract),
		newMigrateDownCmd(g, f),
		newMigrateLintCmd(g, f),
		newMigrateNewCmd(g, f),
		newMigrateRepairCmd(g, f),
		newMigrateAdoptCmd(g, f),
	)
	return cmd
}

// resolve combines the flags with the config file. needDB is false for
// commands that never connect (lint, new).
func (f *migrateFlags) resolve(g *globals, needDB bool) (migrateTarget, error) {
	var t migrateTarget
	var cfg *config.Config
	if (needDB && f.database == "") || f.dir == "" {
		path, err := config.Find(g.configPath)
		switch {
		case err == nil:
			if cfg, err = config.Load(path); err != nil {
				return t, err
			}
		case errors.Is(err, config.ErrNotFound):
			missing := "--dir"
			if needDB && f.database == "" {
				missing = "--database"
			}
			return t, usageErrorf("no config file and no %s: pass --database URL and --dir PATH, or run where cutover.toml is (or with -c)", missing)
		default:
			return t, &UsageError{Err: err}
		}
	}
	t.opts = migrate.Options{Format: f.format, Table: f.table, Release: f.release, URL: f.database}
	t.dir = f.dir
	t.cfg = cfg
	if cfg != nil {
		d := cfg.Database
		if t.opts.URL == "" {
			url, err := d.ExpandedURL()
			if err != nil {
				return t, err
			}
			if url == "" && needDB {
				return t, usageErrorf("%s has no [database] url: set it, or pass --database URL", cfg.Path)
			}
			t.opts.URL = url
		}
		if t.opts.Format == "" {
			t.opts.Format = d.Format
		}
		if t.opts.Table == "" {
			t.opts.Table = d.Table
		}
		t.opts.LockTimeout = d.LockTimeout.Duration
		t.opts.StatementTimeout = d.StatementTimeout.Duration
		t.opts.MigrateLockTimeout = d.MigrateLockTimeout.Duration
		live, liveErr := filepath.EvalSymlinks(cfg.CurrentLink())
		if t.dir == "" {
			base := filepath.Dir(cfg.Path)
			if liveErr == nil {
				base = live
			}
			t.dir = d.Dir
			if !filepath.IsAbs(t.dir) {
				t.dir = filepath.Join(base, t.dir)
			}
		}
		if t.opts.Release == "" && liveErr == nil {
			t.opts.Release = filepath.Base(live)
		}
	}
	if t.opts.Release == "" {
		t.opts.Release = "cli"
	}
	if t.opts.Format == "" {
		t.opts.Format = migrate.FormatAuto
	}
	t.opts.Dir = t.dir
	t.opts.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if needDB {
		if _, err := migrate.Dialect(t.opts.URL); err != nil {
			return t, &UsageError{Err: err}
		}
	}
	return t, nil
}

// open loads the migrations and connects.
func (t migrateTarget) open(ctx context.Context, readOnly bool) (*migrate.Runner, *migrate.Set, error) {
	set, err := migrate.LoadDir(t.dir, t.opts.Format)
	if err != nil {
		return nil, nil, err
	}
	opts := t.opts
	opts.ReadOnly = readOnly
	r, err := migrate.Open(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	return r, set, nil
}

// statusJSON is one migration in `migrate status --json`.
type statusJSON struct {
	ID            uint64    `json:"id"`
	Name          string    `json:"name"`
	Phase         string    `json:"phase"`
	State         string    `json:"state"`
	File          string    `json:"file,omitempty"`
	NoTransaction bool      `json:"no_transaction,omitempty"`
	AppliedAt     time.Time `json:"applied_at,omitzero"`
	DurationMS    int64     `json:"duration_ms,omitempty"`
	Release       string    `json:"release,omitempty"`
	NextStatement int       `json:"next_statement,omitempty"`
	Error         string    `json:"error,omitempty"`
}

func newMigrateStatusCmd(g *globals, f *migrateFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List every migration with its phase and state (applied, pending, failed, partial, changed)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := f.resolve(g, true)
			if err != nil {
				return err
			}
			r, set, err := t.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer r.Close()
			st, err := r.Status(cmd.Context(), set)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]statusJSON, 0, len(st))
				for _, s := range st {
					j := statusJSON{ID: s.ID, Name: s.Name, Phase: string(s.Phase), State: string(s.State)}
					if s.Migration != nil {
						j.File, j.NoTransaction = s.Migration.Up.Path, s.Migration.Up.NoTransaction
					}
					if a := s.Applied; a != nil {
						j.AppliedAt, j.DurationMS, j.Release = a.AppliedAt, a.Duration.Milliseconds(), a.Release
						j.NextStatement, j.Error = a.NextStatement, a.Error
					}
					out = append(out, j)
				}
				return printJSON(g.stdout, out)
			}
			printStatus(g.stdout, set, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printStatus(w io.Writer, set *migrate.Set, st []migrate.MigrationStatus) {
	fmt.Fprintf(w, "%s (%s)\n", set.Dir, set.Format)
	if len(st) == 0 {
		fmt.Fprintln(w, "no migrations")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPHASE\tSTATE\tAPPLIED\tRELEASE")
	var notes []string
	for _, s := range st {
		applied, release := "-", "-"
		if a := s.Applied; a != nil {
			applied = a.AppliedAt.Format("2006-01-02 15:04:05Z")
			release = a.Release
		}
		state := string(s.State)
		if s.Migration != nil && s.Migration.Up.NoTransaction {
			state += " (no-tx)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Name, s.Phase, state, applied, release)
		switch s.State {
		case migrate.StateFailed, migrate.StatePartial:
			notes = append(notes, fmt.Sprintf("%d %s: %s at statement %d: %s", s.ID, s.Name, s.State, s.Applied.NextStatement,
				firstLine(s.Applied.Error)))
		case migrate.StateChanged:
			notes = append(notes, fmt.Sprintf("%d %s: %s changed after it was applied; restore it or run `cutover migrate repair %d`", s.ID, s.Name, s.Migration.Up.Path, s.ID))
		case migrate.StateMissing:
			notes = append(notes, fmt.Sprintf("%d %s: applied, but no file in %s", s.ID, s.Name, set.Dir))
		}
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

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
migrations must be applied first.`
	}
	var force bool
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t, err := f.resolve(g, true)
		if err != nil {
			return err
		}
		if phase == migrate.Contract && !dryRun && !force {
			if err := contractSafe(cmd.Context(), t.cfg); err != nil {
				return err
			}
		}
		r, set, err := t.open(cmd.Context(), dryRun)
		if err != nil {
			return err
		}
		defer r.Close()
		if dryRun {
			ms, err := r.Pending(cmd.Context(), set, phase)
			if err != nil {
				return err
			}
			printPlan(g.stdout, "apply", ms, false)
			return nil
		}
		res, err := r.Up(cmd.Context(), set, phase, printEvent(g.stdout))
		if err != nil {
			return err
		}
		if len(res.Done) == 0 {
			fmt.Fprintf(g.stdout, "no pending %s migrations\n", phase)
		}
		return nil
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
func contractSafe(ctx context.Context, cfg *config.Config) error {
	if cfg == nil {
		return nil // migration runner only: no daemon to ask
	}
	st, err := api.NewClient(cfg.SocketPath()).Status(ctx)
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
				id, err := strconv.ParseUint(to, 10, 64)
				if err != nil {
					return usageErrorf("--to: want a migration id (0 for everything), got %q", to)
				}
				target.To = &id
			}
			t, err := f.resolve(g, true)
			if err != nil {
				return err
			}
			r, set, err := t.open(cmd.Context(), dryRun)
			if err != nil {
				return err
			}
			defer r.Close()
			if dryRun {
				ms, err := r.PlanDown(cmd.Context(), set, target)
				if err != nil {
					return err
				}
				printPlan(g.stdout, "undo", ms, true)
				return nil
			}
			res, err := r.Down(cmd.Context(), set, target, printEvent(g.stdout))
			if err != nil {
				return err
			}
			if len(res.Done) == 0 {
				fmt.Fprintln(g.stdout, "nothing to undo")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and the SQL without changing anything")
	cmd.Flags().StringVar(&to, "to", "", "undo every applied migration with an id above this one (0: all)")
	return cmd
}

func newMigrateRepairCmd(g *globals, f *migrateFlags) *cobra.Command {
	var markApplied bool
	cmd := &cobra.Command{
		Use:   "repair [ID]",
		Short: "Accept changed checksums, or clear a failed or partial migration, after checking the database",
		Long: `Fix the version table deliberately; no migration SQL runs.

Without ID: every applied migration whose file changed gets the file's new
checksum (do this only when the database already matches the edited file).

With ID: that migration's changed checksum is accepted, or, if it is failed
or partial, its row is removed so the next 'up' runs it from the first
statement (undo what ran first). With --mark-applied the failed or partial
migration is recorded as applied instead: you finished it by hand.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts migrate.RepairOptions
			if len(args) == 1 {
				id, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil {
					return usageErrorf("repair ID: want a migration id, got %q", args[0])
				}
				opts.ID = &id
			}
			if markApplied && opts.ID == nil {
				return usageErrorf("--mark-applied needs the ID of one migration")
			}
			opts.MarkApplied = markApplied
			t, err := f.resolve(g, true)
			if err != nil {
				return err
			}
			r, set, err := t.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer r.Close()
			done, err := r.Repair(cmd.Context(), set, opts)
			if err != nil {
				return err
			}
			if len(done) == 0 {
				fmt.Fprintln(g.stdout, "nothing to repair: every applied file matches its recorded checksum")
			}
			for _, d := range done {
				fmt.Fprintf(g.stdout, "%d %s: %s\n", d.ID, d.Name, d.Did)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&markApplied, "mark-applied", false, "record the failed or partial migration ID as applied (you finished it by hand)")
	return cmd
}

func newMigrateAdoptCmd(g *globals, f *migrateFlags) *cobra.Command {
	var from, table string
	cmd := &cobra.Command{
		Use:   "adopt --from golang-migrate|goose|migratus|flyway",
		Short: "Record the migrations another tool applied, without running them",
		Long: `Read another migration tool's version table and record the migrations it
applied in cutover's table, without running anything, so a team switches to
cutover mid-project. A dirty golang-migrate table or a failed Flyway row is
refused: fix it with that tool first. Default tables: schema_migrations
(golang-migrate, migratus), goose_db_version, flyway_schema_history.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return usageErrorf("adopt needs --from, one of %s", strings.Join(migrate.AdoptTools, ", "))
			}
			t, err := f.resolve(g, true)
			if err != nil {
				return err
			}
			r, set, err := t.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer r.Close()
			ms, err := r.Adopt(cmd.Context(), set, from, table)
			if err != nil {
				return err
			}
			for _, m := range ms {
				fmt.Fprintf(g.stdout, "recorded  %s  as applied\n", m)
			}
			fmt.Fprintf(g.stdout, "adopted %d migrations from %s\n", len(ms), from)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the tool: "+strings.Join(migrate.AdoptTools, ", "))
	cmd.Flags().StringVar(&table, "from-table", "", "its version table, when not the tool's default")
	return cmd
}

var notNameChar = regexp.MustCompile(`[^a-z0-9]+`)

func newMigrateNewCmd(g *globals, f *migrateFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Write an empty migration named <timestamp>-NAME in the directory's format",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := f.resolve(g, false)
			if err != nil {
				return err
			}
			name := strings.Trim(notNameChar.ReplaceAllString(strings.ToLower(args[0]), "-"), "-")
			if name == "" {
				return usageErrorf("new NAME: %q has no letters or digits", args[0])
			}
			if err := os.MkdirAll(t.dir, 0o755); err != nil {
				return fmt.Errorf("create migrations directory: %w", err)
			}
			set, err := migrate.LoadDir(t.dir, t.opts.Format)
			if err != nil {
				return err
			}
			files := newMigrationFiles(set.Format, time.Now().UTC().Format("20060102150405"), name)
			for _, nf := range files {
				path := filepath.Join(t.dir, nf.name)
				fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					return fmt.Errorf("write migration: %w", err)
				}
				_, werr := io.WriteString(fh, nf.body)
				if cerr := fh.Close(); werr == nil {
					werr = cerr
				}
				if werr != nil {
					return fmt.Errorf("write %s: %w", path, werr)
				}
				fmt.Fprintln(g.stdout, path)
			}
			return nil
		},
	}
	return cmd
}

type newFile struct{ name, body string }

const newHeader = `-- Phase: expand (the default) must keep the running release working: add
-- tables, nullable columns, indexes CONCURRENTLY. Write
-- "-- cutover:phase contract" on the first line for what may only run once
-- the old release is gone (drop, rename cleanup, SET NOT NULL).
-- Add "-- cutover:no-transaction" for CREATE INDEX CONCURRENTLY.
`

// newMigrationFiles returns the files `migrate new` writes for a format.
func newMigrationFiles(format, stamp, name string) []newFile {
	under := strings.ReplaceAll(name, "-", "_")
	switch format {
	case migrate.FormatGolangMigrate:
		return []newFile{
			{stamp + "_" + under + ".up.sql", newHeader + "\n"},
			{stamp + "_" + under + ".down.sql", "-- Undo " + name + ". Leave empty if it cannot be undone.\n"},
		}
	case migrate.FormatGoose:
		return []newFile{{stamp + "_" + under + ".sql", newHeader + "-- +goose Up\n\n-- +goose Down\n"}}
	case migrate.FormatFlyway:
		return []newFile{{"V" + stamp + "__" + under + ".sql", newHeader + "\n"}}
	}
	return []newFile{
		{stamp + "-" + name + ".up.sql", newHeader + "\n"},
		{stamp + "-" + name + ".down.sql", "-- Undo " + name + ". Leave empty if it cannot be undone.\n"},
	}
}

func newMigrateLintCmd(g *globals, f *migrateFlags) *cobra.Command {
	var asJSON bool
	var dialect string
	cmd := &cobra.Command{
		Use:   "lint",
		Short: "Check migrations for statements unsafe while the old release runs (never connects)",
		Long: `Parse every up migration with the real SQL parser and report what would break
the running release or lock busy tables in the expand phase, with file:line,
the rule, why, and the safe way. "-- cutover:allow RULE reason" above a
statement accepts it deliberately. Lint never connects to the database: the
dialect comes from --dialect, else the scheme of the database URL. Exit code 1
when any error is not allowed.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := f.resolve(g, false)
			if err != nil {
				return err
			}
			if dialect == "" && t.opts.URL != "" {
				if dialect, err = migrate.Dialect(t.opts.URL); err != nil {
					return &UsageError{Err: err}
				}
			}
			if dialect != migrate.DialectPostgres && dialect != migrate.DialectSQLite {
				return usageErrorf("lint needs the SQL dialect: pass --dialect postgres|sqlite or --database URL (got %q)", dialect)
			}
			set, err := migrate.LoadDir(t.dir, t.opts.Format)
			if err != nil {
				return err
			}
			findings := migrate.Lint(set, dialect)
			blocking := 0
			for _, fd := range findings {
				if fd.Blocks() {
					blocking++
				}
			}
			if asJSON {
				out := make([]findingJSON, 0, len(findings))
				for _, fd := range findings {
					out = append(out, findingJSON{Path: fd.Path, Line: fd.Line, Rule: fd.Rule, Statement: fd.Statement,
						Why: fd.Why, Fix: fd.Fix, Severity: fd.Severity, Allowed: fd.Allowed, AllowReason: fd.AllowReason})
				}
				if err := printJSON(g.stdout, out); err != nil {
					return err
				}
			} else {
				printFindings(g.stdout, findings)
				fmt.Fprintf(g.stdout, "%d migrations checked (%s): %d findings, %d blocking\n", len(set.Migrations), dialect, len(findings), blocking)
			}
			if blocking > 0 {
				return &silentError{code: ExitFailed, err: fmt.Errorf("%d unsafe statements", blocking)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the findings as JSON")
	cmd.Flags().StringVar(&dialect, "dialect", "", "postgres or sqlite (default: from the database URL)")
	return cmd
}

// findingJSON is one finding in `migrate lint --json`.
type findingJSON struct {
	Path        string `json:"path"`
	Line        int    `json:"line"`
	Rule        string `json:"rule"`
	Statement   string `json:"statement"`
	Why         string `json:"why"`
	Fix         string `json:"fix"`
	Severity    string `json:"severity"`
	Allowed     bool   `json:"allowed"`
	AllowReason string `json:"allow_reason,omitempty"`
}

func printFindings(w io.Writer, findings []lint.Finding) {
	for _, fd := range findings {
		sev := fd.Severity
		if fd.Allowed {
			sev = "allowed"
		}
		fmt.Fprintf(w, "%s:%d: %s [%s] %s\n", fd.Path, fd.Line, sev, fd.Rule, fd.Why)
		fmt.Fprintf(w, "    %s\n", firstLines(fd.Statement, 3))
		if fd.Allowed {
			fmt.Fprintf(w, "    allowed: %s\n", fd.AllowReason)
		} else if fd.Fix != "" {
			fmt.Fprintf(w, "    instead: %s\n", fd.Fix)
		}
	}
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n    ")
}
