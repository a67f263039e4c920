package migrate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cutover/cutover/internal/pgtest"
)

// backend is a database a test runs against.
type backend struct {
	name string
	url  string
}

// backends returns a fresh SQLite database and a fresh Postgres database.
func backends(t *testing.T) []backend {
	t.Helper()
	return []backend{sqliteBackend(t), postgresBackend(t)}
}

func sqliteBackend(t *testing.T) backend {
	return backend{DialectSQLite, "sqlite://" + filepath.Join(t.TempDir(), "app.db")}
}

func postgresBackend(t *testing.T) backend {
	return backend{DialectPostgres, pgtest.Start(t).CreateDB(t, t.Name())}
}

// forEach runs f as a subtest against each backend.
func forEach(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run(DialectSQLite, func(t *testing.T) { f(t, sqliteBackend(t)) })
	t.Run(DialectPostgres, func(t *testing.T) { f(t, postgresBackend(t)) })
}

func open(t *testing.T, url string, opts ...func(*Options)) *Runner {
	t.Helper()
	o := Options{URL: url, Release: "test"}
	for _, f := range opts {
		f(&o)
	}
	r, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func load(t *testing.T, dir string) *Set {
	t.Helper()
	set, err := LoadDir(dir, FormatAuto)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	return set
}

// schema describes the user tables, columns and indexes, without the
// version table, so two states can be compared.
func schema(t *testing.T, r *Runner) []string {
	t.Helper()
	ctx := context.Background()
	var query string
	if r.dialect == DialectPostgres {
		query = `SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
			FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'cutover_migrations'
			UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'cutover_migrations'
			UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
			ORDER BY 1`
	} else {
		query = `SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master
			WHERE name NOT LIKE 'cutover_migrations%' AND name NOT LIKE 'sqlite_%' ORDER BY 1`
	}
	rows, err := r.conn.QueryContext(ctx, query)
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("read schema: %v", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read schema: %v", err)
	}
	return out
}

func hasTable(t *testing.T, r *Runner, table string) bool {
	t.Helper()
	for _, s := range schema(t, r) {
		if strings.Contains(s, " "+table+".") || strings.HasPrefix(s, "table "+table+" ") {
			return true
		}
	}
	return false
}

func appliedIDs(t *testing.T, r *Runner) []Version {
	t.Helper()
	rows, err := r.Applied(context.Background())
	if err != nil {
		t.Fatalf("Applied: %v", err)
	}
	var ids []Version
	for _, a := range rows {
		if a.Status == StatusApplied {
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// sameSQL holds three migrations written once per format.
var formatFiles = map[string]map[string]string{
	FormatNative: {
		"1-users.up.sql":       "CREATE TABLE users (id integer PRIMARY KEY, name text);",
		"1-users.down.sql":     "DROP TABLE users;",
		"2-email.up.sql":       "-- adds email\nALTER TABLE users ADD COLUMN email text;\n--;;\nCREATE INDEX users_email ON users (email);",
		"2-email.down.sql":     "DROP INDEX users_email;\n--;;\nALTER TABLE users DROP COLUMN email;",
		"3-drop-name.up.sql":   "-- cutover:phase contract\nALTER TABLE users DROP COLUMN name;",
		"3-drop-name.down.sql": "ALTER TABLE users ADD COLUMN name text;",
	},
	FormatGolangMigrate: {
		"000001_users.up.sql":       "CREATE TABLE users (id integer PRIMARY KEY, name text);",
		"000001_users.down.sql":     "DROP TABLE IF EXISTS users;",
		"000002_email.up.sql":       "ALTER TABLE users ADD COLUMN email text;\nCREATE INDEX users_email ON users (email);",
		"000002_email.down.sql":     "DROP INDEX users_email;\nALTER TABLE users DROP COLUMN email;",
		"000003_drop_name.up.sql":   "-- cutover:phase contract\nALTER TABLE users DROP COLUMN name;",
		"000003_drop_name.down.sql": "ALTER TABLE users ADD COLUMN name text;",
	},
	FormatGoose: {
		"20240101000001_users.sql":     "-- +goose Up\nCREATE TABLE users (id integer PRIMARY KEY, name text);\n\n-- +goose Down\nDROP TABLE users;\n",
		"20240101000002_email.sql":     "-- +goose Up\n-- +goose StatementBegin\nALTER TABLE users ADD COLUMN email text;\n-- +goose StatementEnd\nCREATE INDEX users_email ON users (email);\n-- +goose Down\nDROP INDEX users_email;\nALTER TABLE users DROP COLUMN email;\n",
		"20240101000003_drop_name.sql": "-- cutover:phase contract\n-- +goose Up\nALTER TABLE users DROP COLUMN name;\n-- +goose Down\nALTER TABLE users ADD COLUMN name text;\n",
	},
	FormatFlyway: {
		"V1__users.sql":     "CREATE TABLE users (id integer PRIMARY KEY, name text);",
		"V2__email.sql":     "ALTER TABLE users ADD COLUMN email text;\nCREATE INDEX users_email ON users (email);",
		"V3__drop_name.sql": "-- cutover:phase contract\nALTER TABLE users DROP COLUMN name;",
	},
}

func TestFormatsUpDown(t *testing.T) {
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			forEach(t, func(t *testing.T, b backend) {
				ctx := context.Background()
				set := load(t, writeFiles(t, t.TempDir(), formatFiles[format]))
				if set.Format != format {
					t.Fatalf("detected format: got %q, want %q", set.Format, format)
				}
				r := open(t, b.url)
				before := schema(t, r)

				res, err := r.Up(ctx, set, Expand, nil)
				if err != nil {
					t.Fatalf("Up expand: %v", err)
				}
				if got := len(res.Done); got != 2 {
					t.Errorf("Up expand applied %d migrations, want 2", got)
				}
				if _, err := r.Up(ctx, set, Contract, nil); err != nil {
					t.Fatalf("Up contract: %v", err)
				}
				if diff := cmp.Diff([]Version{set.Migrations[0].ID, set.Migrations[1].ID, set.Migrations[2].ID}, appliedIDs(t, r)); diff != "" {
					t.Errorf("applied ids (-want +got):\n%s", diff)
				}
				after := schema(t, r)
				if !slices.ContainsFunc(after, func(s string) bool { return strings.Contains(s, "email") }) {
					t.Errorf("schema after up has no email column: %q", after)
				}
				// Up again: nothing to do.
				res, err = r.Up(ctx, set, Expand, nil)
				if err != nil || len(res.Done) != 0 {
					t.Errorf("second Up: got %d applied, %v; want 0, nil", len(res.Done), err)
				}

				zero := Version("0")
				_, err = r.Down(ctx, set, DownTarget{To: &zero}, nil)
				if format == FormatFlyway {
					if err == nil || !strings.Contains(err.Error(), "V3__drop_name.sql has no down script") {
						t.Fatalf("Down of Flyway: got %v, want a no-down-script error", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Down --to 0: %v", err)
				}
				if diff := cmp.Diff(before, schema(t, r)); diff != "" {
					t.Errorf("schema after up and down differs from before (-before +after):\n%s", diff)
				}
				if ids := appliedIDs(t, r); len(ids) != 0 {
					t.Errorf("after down --to 0, applied: got %v, want none", ids)
				}
			})
		})
	}
}

func TestDownSteps(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	set := load(t, writeFiles(t, t.TempDir(), formatFiles[FormatNative]))
	r := open(t, b.url)
	if _, err := r.Up(ctx, set, Expand, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Up(ctx, set, Contract, nil); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := r.conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("sqlite journal mode: got %q, %v; want wal", mode, err)
	}
	res, err := r.Down(ctx, set, DownTarget{}, nil)
	if err != nil {
		t.Fatalf("Down: %v", err)
	}
	if len(res.Done) != 1 || res.Done[0].Migration.ID != "3" {
		t.Errorf("Down with no target undid %v, want only 3", res.Done)
	}
	one := Version("1")
	plan, err := r.PlanDown(ctx, set, DownTarget{To: &one})
	if err != nil || len(plan) != 1 || plan[0].ID != "2" {
		t.Errorf("PlanDown --to 1: got %v, %v; want [2]", plan, err)
	}
	if diff := cmp.Diff([]Version{"1", "2"}, appliedIDs(t, r)); diff != "" {
		t.Errorf("PlanDown changed the table (-want +got):\n%s", diff)
	}
}

// TestUpOnlyDown: a golang-migrate or Migratus directory without down
// files loads and applies; down refuses the migration without a down file,
// naming the file to write, and undoes it once the file exists.
func TestUpOnlyDown(t *testing.T) {
	for _, tt := range []struct{ format, up, down string }{
		{FormatGolangMigrate, "000002_email.up.sql", "000002_email.down.sql"},
		{FormatNative, "2-email.up.sql", "2-email.down.sql"},
	} {
		t.Run(tt.format, func(t *testing.T) {
			ctx := context.Background()
			files := map[string]string{}
			for name, sql := range formatFiles[tt.format] {
				if !strings.HasSuffix(name, ".down.sql") && !strings.Contains(sql, "contract") {
					files[name] = sql
				}
			}
			dir := writeFiles(t, t.TempDir(), files)
			set := load(t, dir)
			r := open(t, sqliteBackend(t).url)
			if _, err := r.Up(ctx, set, Expand, nil); err != nil {
				t.Fatalf("Up: %v", err)
			}
			_, err := r.Down(ctx, set, DownTarget{}, nil)
			want := "has no down file " + filepath.Join(dir, tt.down)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Write that file") {
				t.Fatalf("Down of an up-only migration: got %v, want an error containing %q and what to do", err, want)
			}
			if diff := cmp.Diff([]Version{"1", "2"}, appliedIDs(t, r)); diff != "" {
				t.Errorf("a refused Down changed the table (-want +got):\n%s", diff)
			}
			writeFiles(t, dir, map[string]string{tt.down: "DROP INDEX users_email;\nALTER TABLE users DROP COLUMN email;"})
			if _, err := r.Down(ctx, load(t, dir), DownTarget{}, nil); err != nil {
				t.Fatalf("Down once %s exists: %v", tt.down, err)
			}
			if diff := cmp.Diff([]Version{"1"}, appliedIDs(t, r)); diff != "" {
				t.Errorf("after Down (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPostgresGooseFunctionAndConcurrentIndex(t *testing.T) {
	ctx := context.Background()
	b := postgresBackend(t)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"00001_users.sql": `-- +goose Up
CREATE TABLE users (id integer PRIMARY KEY, email text);
-- +goose StatementBegin
CREATE FUNCTION lower_email() RETURNS trigger AS $$
BEGIN
  NEW.email := lower(NEW.email); -- a semicolon inside the body
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
-- +goose Down
DROP TABLE users;
DROP FUNCTION lower_email();
`,
		"00002_index.sql": `-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY users_email ON users (email);
-- +goose Down
DROP INDEX CONCURRENTLY users_email;
`,
	})
	set := load(t, dir)
	r := open(t, b.url)
	before := schema(t, r)
	if _, err := r.Up(ctx, set, Expand, nil); err != nil {
		t.Fatalf("Up: %v", err)
	}
	var valid bool
	if err := r.conn.QueryRowContext(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email'::regclass`).Scan(&valid); err != nil || !valid {
		t.Fatalf("index users_email: valid %v, err %v; want a valid index", valid, err)
	}
	zero := Version("0")
	if _, err := r.Down(ctx, set, DownTarget{To: &zero}, nil); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if diff := cmp.Diff(before, schema(t, r)); diff != "" {
		t.Errorf("schema after up and down (-before +after):\n%s", diff)
	}
}

func TestPhases(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	files := map[string]string{
		"1-a.up.sql": "CREATE TABLE a (x integer, old integer);", "1-a.down.sql": "DROP TABLE a;",
		"2-drop.up.sql": "-- cutover:phase contract\nALTER TABLE a DROP COLUMN old;", "2-drop.down.sql": "ALTER TABLE a ADD COLUMN old integer;",
	}
	dir := writeFiles(t, t.TempDir(), files)
	r := open(t, b.url)
	set := load(t, dir)
	if _, err := r.Pending(ctx, set, Contract); err == nil || !strings.Contains(err.Error(), "1-a.up.sql is not applied yet") {
		t.Errorf("Pending contract before expand: got %v, want a not-applied error", err)
	}
	p, err := r.Pending(ctx, set, Expand)
	if err != nil || len(p) != 1 || p[0].ID != "1" {
		t.Fatalf("Pending expand: got %v, %v; want [1]", p, err)
	}
	if _, err := r.Up(ctx, set, Expand, nil); err != nil {
		t.Fatal(err)
	}
	// A new expand migration after the pending contract one.
	writeFiles(t, dir, map[string]string{"3-b.up.sql": "CREATE TABLE b (x integer);", "3-b.down.sql": "DROP TABLE b;"})
	set = load(t, dir)
	_, err = r.Up(ctx, set, Expand, nil)
	var poe *PhaseOrderError
	if !errors.As(err, &poe) || poe.Expand.ID != "3" || poe.Contract.ID != "2" {
		t.Fatalf("Up: got %v, want a PhaseOrderError for 3 after 2", err)
	}
	if !strings.Contains(err.Error(), "cutover migrate contract") {
		t.Errorf("error %q does not say how to fix it", err)
	}
	os.Remove(filepath.Join(dir, "3-b.up.sql"))
	os.Remove(filepath.Join(dir, "3-b.down.sql"))
	set = load(t, dir)
	res, err := r.Up(ctx, set, Contract, nil)
	if err != nil || len(res.Done) != 1 || res.Done[0].Migration.Phase != Contract {
		t.Fatalf("Up contract: got %+v, %v; want migration 2", res.Done, err)
	}
}
