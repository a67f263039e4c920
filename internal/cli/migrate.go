package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/migrate"
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
			if cfg, err = cfg.ForUnit(g.app); err != nil {
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
	// ID is a number for an integer version (as every version was before
	// dotted ones) and a string otherwise ("1.1", "R__views").
	ID            any       `json:"id"`
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
					j := statusJSON{ID: string(s.ID), Name: s.Name, Phase: string(s.Phase), State: string(s.State)}
					if n, ok := s.ID.Int(); ok {
						j.ID = n
					}
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Name, s.Phase, state, applied, release)
		switch s.State {
		case migrate.StateFailed, migrate.StatePartial:
			notes = append(notes, fmt.Sprintf("%s %s: %s at statement %d: %s", s.ID, s.Name, s.State, s.Applied.NextStatement,
				firstLine(s.Applied.Error)))
		case migrate.StateChanged:
			notes = append(notes, fmt.Sprintf("%s %s: %s changed after it was applied; restore it or run `cutover migrate repair %s`", s.ID, s.Name, s.Migration.Up.Path, s.ID))
		case migrate.StateMissing:
			notes = append(notes, fmt.Sprintf("%s %s: applied, but no file in %s", s.ID, s.Name, set.Dir))
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

// releaseDir is where the app's database commands run: the live release
// (<data_dir>/current; live is true), else the config file's directory.
func (t migrateTarget) releaseDir() (dir string, live bool) {
	if d, err := filepath.EvalSymlinks(t.cfg.CurrentLink()); err == nil {
		return d, true
	}
	return filepath.Dir(t.cfg.Path), false
}
