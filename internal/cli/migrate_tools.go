package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/migrate"
)

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
				id, err := migrate.ParseVersion(args[0])
				if err != nil {
					return usageErrorf("repair ID: want a migration id as status shows it (20240101120000, 1.1, R__views), got %q", args[0])
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
				fmt.Fprintf(g.stdout, "%s %s: %s\n", d.ID, d.Name, d.Did)
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

// Compiled when first used, not at start: every command, the lightest
// included, would pay for it otherwise.
var notNameChar = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^a-z0-9]+`) })

func newMigrateNewCmd(g *globals, f *migrateFlags) *cobra.Command {
	var repeatable bool
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Write an empty migration named <timestamp>-NAME in the directory's format",
		Long: `Write an empty migration in the directory's format, versioned by the
current time (UTC, 20060102150405). In a Flyway directory whose newest
version is dotted (V2.0.3__...), the new one continues it (V2.0.4__NAME.sql);
--repeatable writes a Flyway repeatable migration, R__NAME.sql, which runs
after the versioned ones whenever it changed.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := f.resolve(g, false)
			if err != nil {
				return err
			}
			name := strings.Trim(notNameChar().ReplaceAllString(strings.ToLower(args[0]), "-"), "-")
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
			if repeatable && set.Format != migrate.FormatFlyway {
				return usageErrorf("--repeatable: only Flyway has repeatable migrations, and %s is %s", t.dir, set.Format)
			}
			var files []newFile
			switch {
			case repeatable:
				files = []newFile{{"R__" + strings.ReplaceAll(name, "-", "_") + ".sql", newHeader + "\n"}}
			case set.Format == migrate.FormatFlyway:
				files = newMigrationFiles(set.Format, nextFlywayVersion(set, time.Now().UTC()), name)
			default:
				files = newMigrationFiles(set.Format, time.Now().UTC().Format("20060102150405"), name)
			}
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
	cmd.Flags().BoolVar(&repeatable, "repeatable", false, "write a Flyway repeatable migration R__NAME.sql")
	return cmd
}

// nextFlywayVersion continues a directory whose newest versioned
// migration has a dotted version by adding one to its last part, and uses
// the time otherwise.
func nextFlywayVersion(set *migrate.Set, now time.Time) string {
	for i := len(set.Migrations) - 1; i >= 0; i-- {
		m := set.Migrations[i]
		if m.Repeatable() {
			continue
		}
		v := string(m.ID)
		dot := strings.LastIndexByte(v, '.')
		if dot < 0 {
			break
		}
		last, err := strconv.ParseUint(v[dot+1:], 10, 64)
		if err != nil {
			break // ParseVersion wrote it; cannot happen
		}
		return v[:dot+1] + strconv.FormatUint(last+1, 10)
	}
	return now.Format("20060102150405")
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
