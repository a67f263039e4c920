package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

func appliedIDs(t *testing.T, r *Runner) []uint64 {
	t.Helper()
	rows, err := r.Applied(context.Background())
	if err != nil {
		t.Fatalf("Applied: %v", err)
	}
	var ids []uint64
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
				if diff := cmp.Diff([]uint64{set.Migrations[0].ID, set.Migrations[1].ID, set.Migrations[2].ID}, appliedIDs(t, r)); diff != "" {
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

				zero := uint64(0)
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
	if len(res.Done) != 1 || res.Done[0].Migration.ID != 3 {
		t.Errorf("Down with no target undid %v, want only 3", res.Done)
	}
	one := uint64(1)
	plan, err := r.PlanDown(ctx, set, DownTarget{To: &one})
	if err != nil || len(plan) != 1 || plan[0].ID != 2 {
		t.Errorf("PlanDown --to 1: got %v, %v; want [2]", plan, err)
	}
	if diff := cmp.Diff([]uint64{1, 2}, appliedIDs(t, r)); diff != "" {
		t.Errorf("PlanDown changed the table (-want +got):\n%s", diff)
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
	zero := uint64(0)
	if _, err := r.Down(ctx, set, DownTarget{To: &zero}, nil); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if diff := cmp.Diff(before, schema(t, r)); diff != "" {
		t.Errorf("schema after up and down (-before +after):\n%s", diff)
	}
}

func TestConcurrentRunners(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		set := load(t, writeFiles(t, t.TempDir(), manyMigrations(8)))
		var wg sync.WaitGroup
		results := make([]Result, 5)
		errs := make([]error, 5)
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := Open(context.Background(), Options{URL: b.url, Release: fmt.Sprintf("runner-%d", i)})
				if err != nil {
					errs[i] = err
					return
				}
				defer r.Close()
				results[i], errs[i] = r.Up(context.Background(), set, Expand, nil)
			}()
		}
		wg.Wait()
		total := 0
		for i := range 5 {
			if errs[i] != nil {
				t.Errorf("runner %d: %v", i, errs[i])
			}
			total += len(results[i].Done)
		}
		if total != 8 {
			t.Errorf("migrations applied across runners: got %d, want 8", total)
		}
		checkManyApplied(t, open(t, b.url), 8)
	})
}

// manyMigrations returns n native migrations; each creates a table and
// inserts one row into a shared counter table, so running one twice shows.
func manyMigrations(n int) map[string]string {
	files := map[string]string{
		"1-runs.up.sql":   "CREATE TABLE runs (id integer NOT NULL);",
		"1-runs.down.sql": "DROP TABLE runs;",
	}
	for i := 2; i <= n; i++ {
		files[fmt.Sprintf("%d-t%d.up.sql", i, i)] = fmt.Sprintf("CREATE TABLE t%d (x integer);\nINSERT INTO runs (id) VALUES (%d);", i, i)
		files[fmt.Sprintf("%d-t%d.down.sql", i, i)] = fmt.Sprintf("DROP TABLE t%d;\nDELETE FROM runs WHERE id = %d;", i, i)
	}
	return files
}

func checkManyApplied(t *testing.T, r *Runner, n int) {
	t.Helper()
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if diff := cmp.Diff(want, appliedIDs(t, r)); diff != "" {
		t.Errorf("version table ids (-want +got):\n%s", diff)
	}
	var runs, distinct int
	if err := r.conn.QueryRowContext(context.Background(), `SELECT count(*), count(DISTINCT id) FROM runs`).Scan(&runs, &distinct); err != nil {
		t.Fatalf("count runs: %v", err)
	}
	if runs != n-1 || distinct != n-1 {
		t.Errorf("rows in runs: got %d (%d distinct), want %d: a migration ran twice or not at all", runs, distinct, n-1)
	}
	for i := 2; i <= n; i++ {
		if !hasTable(t, r, fmt.Sprintf("t%d", i)) {
			t.Errorf("table t%d missing", i)
		}
	}
}

const (
	childURLEnv = "CUTOVER_MIGRATE_TEST_CHILD_URL"
	childDirEnv = "CUTOVER_MIGRATE_TEST_CHILD_DIR"
)

// runChildIfAsked runs one "migrate up" as a child process of
// TestConcurrentProcesses and exits; it returns false in a normal test run.
func runChildIfAsked() bool {
	url := os.Getenv(childURLEnv)
	if url == "" {
		return false
	}
	err := func() error {
		set, err := LoadDir(os.Getenv(childDirEnv), FormatAuto)
		if err != nil {
			return err
		}
		r, err := Open(context.Background(), Options{URL: url, Release: fmt.Sprintf("child-%d", os.Getpid())})
		if err != nil {
			return err
		}
		defer r.Close()
		res, err := r.Up(context.Background(), set, Expand, nil)
		fmt.Printf("applied %d\n", len(res.Done))
		return err
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

func TestConcurrentProcesses(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		dir := writeFiles(t, t.TempDir(), manyMigrations(6))
		cmds := make([]*exec.Cmd, 5)
		outs := make([]*strings.Builder, 5)
		for i := range cmds {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childURLEnv+"="+b.url, childDirEnv+"="+dir)
			outs[i] = &strings.Builder{}
			cmd.Stdout, cmd.Stderr = outs[i], outs[i]
			if err := cmd.Start(); err != nil {
				t.Fatalf("start child %d: %v", i, err)
			}
			t.Cleanup(func() { cmd.Process.Kill() }) // Already exited after Wait; the error is moot.
			cmds[i] = cmd
		}
		total := 0
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("child %d: %v\n%s", i, err, outs[i])
				continue
			}
			var n int
			if _, err := fmt.Sscanf(outs[i].String(), "applied %d", &n); err != nil {
				t.Errorf("child %d output %q: %v", i, outs[i], err)
			}
			total += n
		}
		if total != 6 {
			t.Errorf("migrations applied across processes: got %d, want 6", total)
		}
		checkManyApplied(t, open(t, b.url), 6)
	})
}

func TestFailingTransactionalMigrationLeavesNothing(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := writeFiles(t, t.TempDir(), map[string]string{
			"1-a.up.sql":   "CREATE TABLE a (x integer);\nINSERT INTO a VALUES (1);\n\nINSERT INTO missing VALUES (1);\n",
			"1-a.down.sql": "DROP TABLE a;",
		})
		r := open(t, b.url)
		before := schema(t, r)
		_, err := r.Up(ctx, load(t, dir), Expand, nil)
		var se *StatementError
		if !errors.As(err, &se) {
			t.Fatalf("Up: got %v, want a *StatementError", err)
		}
		if se.Line != 4 || se.Index != 3 || se.Total != 3 || !strings.HasSuffix(se.Path, "1-a.up.sql") {
			t.Errorf("StatementError: got %s:%d statement %d of %d, want 1-a.up.sql:4 statement 3 of 3", se.Path, se.Line, se.Index, se.Total)
		}
		if !strings.Contains(err.Error(), "rolled back") {
			t.Errorf("error %q does not say the transaction was rolled back", err)
		}
		if diff := cmp.Diff(before, schema(t, r)); diff != "" {
			t.Errorf("failed migration left schema changes (-before +after):\n%s", diff)
		}
		rows, err := r.Applied(ctx)
		if err != nil || len(rows) != 1 || rows[0].Status != StatusFailed || rows[0].NextStatement != 3 {
			t.Fatalf("version table: got %+v, %v; want one failed row at statement 3", rows, err)
		}
		// Fix the file: the next Up runs it again from the start.
		writeFiles(t, dir, map[string]string{"1-a.up.sql": "CREATE TABLE a (x integer);\nINSERT INTO a VALUES (1);\n"})
		if _, err := r.Up(ctx, load(t, dir), Expand, nil); err != nil {
			t.Fatalf("Up after fix: %v", err)
		}
		if diff := cmp.Diff([]uint64{1}, appliedIDs(t, r)); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
	})
}

func TestNoTransactionResume(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := writeFiles(t, t.TempDir(), map[string]string{
			"1-a.up.sql":   "-- cutover:no-transaction\nCREATE TABLE a (x integer);\nINSERT INTO a SELECT x FROM seed;\nCREATE TABLE b (y integer);\n",
			"1-a.down.sql": "DROP TABLE b;\nDROP TABLE a;",
		})
		r := open(t, b.url)
		var events []EventKind
		_, err := r.Up(ctx, load(t, dir), Expand, func(e Event) { events = append(events, e.Kind) })
		var se *StatementError
		if !errors.As(err, &se) {
			t.Fatalf("Up: got %v, want a *StatementError", err)
		}
		if se.Line != 3 || se.Index != 2 || !se.NoTransaction {
			t.Errorf("StatementError: got line %d statement %d (no-transaction %v), want line 3 statement 2 no-transaction", se.Line, se.Index, se.NoTransaction)
		}
		for _, want := range []string{"1-a.up.sql:3", "Statements 1 to 1 ran", "resumes at statement 2", "INSERT INTO a SELECT x FROM seed"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if diff := cmp.Diff([]EventKind{EventStart, EventStatement, EventFailed}, events); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		rows, err := r.Applied(ctx)
		if err != nil || len(rows) != 1 || rows[0].Status != StatusPartial || rows[0].NextStatement != 2 || rows[0].Error == "" {
			t.Fatalf("version table: got %+v, %v; want one partial row at statement 2 with the error", rows, err)
		}
		// The operator fixes the database; statement 1 (CREATE TABLE a)
		// must not run again, or it would fail.
		if _, err := r.conn.ExecContext(ctx, "CREATE TABLE seed (x integer)"); err != nil {
			t.Fatal(err)
		}
		res, err := r.Up(ctx, load(t, dir), Expand, nil)
		if err != nil {
			t.Fatalf("Up after fix: %v", err)
		}
		if len(res.Done) != 1 || res.Done[0].ResumedAt != 2 {
			t.Errorf("Up after fix: got %+v, want one migration resumed at statement 2", res.Done)
		}
		if !hasTable(t, r, "b") {
			t.Errorf("table b was not created by the resumed migration")
		}
		if diff := cmp.Diff([]uint64{1}, appliedIDs(t, r)); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
	})
}

func TestNoTransactionResumeAfterFileFix(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"1-a.up.sql":   "-- cutover:no-transaction\nCREATE TABLE a (x integer);\nINSERT INTO a VALUES (1, 2);\n",
		"1-a.down.sql": "DROP TABLE a;",
	})
	r := open(t, b.url)
	if _, err := r.Up(ctx, load(t, dir), Expand, nil); err == nil {
		t.Fatal("Up: got no error, want the failing INSERT")
	}
	// Fixing the failed statement itself keeps the completed prefix, so
	// resuming is safe.
	writeFiles(t, dir, map[string]string{"1-a.up.sql": "-- cutover:no-transaction\nCREATE TABLE a (x integer);\nINSERT INTO a VALUES (1);\n"})
	res, err := r.Up(ctx, load(t, dir), Expand, nil)
	if err != nil || len(res.Done) != 1 || res.Done[0].ResumedAt != 2 {
		t.Fatalf("Up after fixing the statement: got %+v, %v; want a resume at statement 2", res.Done, err)
	}
	// Changing a statement that already ran is refused.
	dir2 := writeFiles(t, t.TempDir(), map[string]string{
		"1-a.up.sql":   "-- cutover:no-transaction\nCREATE TABLE c (x integer);\nINSERT INTO c VALUES (1, 2);\n",
		"1-a.down.sql": "DROP TABLE c;",
	})
	r2 := open(t, sqliteBackend(t).url)
	if _, err := r2.Up(ctx, load(t, dir2), Expand, nil); err == nil {
		t.Fatal("Up: got no error, want the failing INSERT")
	}
	writeFiles(t, dir2, map[string]string{"1-a.up.sql": "-- cutover:no-transaction\nCREATE TABLE d (x integer);\nINSERT INTO d VALUES (1);\n"})
	_, err = r2.Up(ctx, load(t, dir2), Expand, nil)
	if err == nil || !strings.Contains(err.Error(), "the file was changed among them") || !strings.Contains(err.Error(), "repair 1") {
		t.Errorf("Up after changing a completed statement: got %v, want a refusal that points to repair", err)
	}
}

func TestLockTimeoutRetried(t *testing.T) {
	ctx := context.Background()
	b := postgresBackend(t)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"1-t.up.sql":     "CREATE TABLE t (x integer);",
		"1-t.down.sql":   "DROP TABLE t;",
		"2-col.up.sql":   "ALTER TABLE t ADD COLUMN y integer;",
		"2-col.down.sql": "ALTER TABLE t DROP COLUMN y;",
	})
	set := load(t, dir)
	r := open(t, b.url, func(o *Options) { o.LockTimeout = 50 * time.Millisecond; o.RetryBackoff = time.Millisecond })
	if _, err := r.Up(ctx, &Set{Dir: dir, Format: set.Format, Migrations: set.Migrations[:1]}, Expand, nil); err != nil {
		t.Fatal(err)
	}
	// Another session holds a lock on t, as a long query of the app would.
	db, err := sql.Open("pgx", b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // Committed below; Rollback then is a no-op.
	if _, err := tx.ExecContext(ctx, "LOCK TABLE t IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	var retries []Event
	res, err := r.Up(ctx, set, Expand, func(e Event) {
		if e.Kind != EventRetry {
			return
		}
		retries = append(retries, e)
		if len(retries) == 2 {
			// Released during the backoff: the third attempt succeeds.
			if err := tx.Commit(); err != nil {
				t.Errorf("release the lock: %v", err)
			}
		}
	})
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if len(res.Done) != 1 || len(retries) != 2 {
		t.Fatalf("got %d applied after %d retries, want 1 after 2", len(res.Done), len(retries))
	}
	if !isLockNotAvailable(retries[0].Err) {
		t.Errorf("retry cause: got %v, want SQLSTATE 55P03", retries[0].Err)
	}
	if retries[1].Wait <= retries[0].Wait {
		t.Errorf("backoff did not grow: %s then %s", retries[0].Wait, retries[1].Wait)
	}
}

func TestLockTimeoutGivesUp(t *testing.T) {
	ctx := context.Background()
	b := postgresBackend(t)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"1-t.up.sql": "CREATE TABLE t (x integer);", "1-t.down.sql": "DROP TABLE t;",
		"2-col.up.sql": "ALTER TABLE t ADD COLUMN y integer;", "2-col.down.sql": "ALTER TABLE t DROP COLUMN y;",
	})
	set := load(t, dir)
	r := open(t, b.url, func(o *Options) {
		o.LockTimeout = 20 * time.Millisecond
		o.RetryBackoff = time.Millisecond
		o.LockRetries = 2
	})
	if _, err := r.Up(ctx, &Set{Dir: dir, Migrations: set.Migrations[:1]}, Expand, nil); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // Ends the lock at the end of the test.
	if _, err := tx.ExecContext(ctx, "LOCK TABLE t IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	n := 0
	_, err = r.Up(ctx, set, Expand, func(e Event) {
		if e.Kind == EventRetry {
			n++
		}
	})
	if !isLockNotAvailable(err) || n != 2 {
		t.Errorf("Up: got %v after %d retries, want 55P03 after 2", err, n)
	}
}

func TestMigrationLockNamesHolder(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		holder := open(t, b.url, func(o *Options) { o.Release = "v41" })
		unlock, err := holder.lock(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		waiter := open(t, b.url, func(o *Options) { o.MigrateLockTimeout = 300 * time.Millisecond })
		var waits []Event
		set := load(t, writeFiles(t, t.TempDir(), manyMigrations(2)))
		_, err = waiter.Up(ctx, set, Expand, func(e Event) {
			if e.Kind == EventLockWait {
				waits = append(waits, e)
			}
		})
		var lte *LockTimeoutError
		if !errors.As(err, &lte) {
			t.Fatalf("Up: got %v, want a *LockTimeoutError", err)
		}
		if !strings.Contains(lte.Holder, "cutover migrate v41") {
			t.Errorf("holder: got %q, want it to name \"cutover migrate v41\"", lte.Holder)
		}
		if len(waits) != 1 {
			t.Errorf("lock-wait events: got %d, want 1", len(waits))
		}
		if ids := appliedIDs(t, waiter); len(ids) != 0 {
			t.Errorf("applied without the lock: %v", ids)
		}
	})
}

func TestChecksumChangeAndRepair(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := writeFiles(t, t.TempDir(), manyMigrations(2))
		r := open(t, b.url)
		if _, err := r.Up(ctx, load(t, dir), Expand, nil); err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string]string{"2-t2.up.sql": "CREATE TABLE t2 (x integer); -- reformatted\nINSERT INTO runs (id) VALUES (2);"})
		set := load(t, dir)
		_, err := r.Up(ctx, set, Expand, nil)
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.ID != 2 || !strings.Contains(err.Error(), "2-t2.up.sql was changed") || !strings.Contains(err.Error(), "repair 2") {
			t.Fatalf("Up after edit: got %v, want a checksum error naming 2-t2.up.sql and repair", err)
		}
		st, err := r.Status(ctx, set)
		if err != nil || st[1].State != StateChanged {
			t.Fatalf("Status: got %+v, %v; want migration 2 changed", st, err)
		}
		done, err := r.Repair(ctx, set, RepairOptions{})
		if err != nil || len(done) != 1 || done[0].ID != 2 || !strings.Contains(done[0].Did, "accepted the new checksum") {
			t.Fatalf("Repair: got %+v, %v; want the checksum of 2 accepted", done, err)
		}
		if _, err := r.Up(ctx, set, Expand, nil); err != nil {
			t.Errorf("Up after repair: %v", err)
		}
		id := uint64(2)
		if _, err := r.Repair(ctx, set, RepairOptions{ID: &id}); err == nil || !strings.Contains(err.Error(), "nothing to repair") {
			t.Errorf("Repair of a healthy migration: got %v, want nothing to repair", err)
		}
	})
}

func TestRepairPartial(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"1-a.up.sql":   "-- cutover:no-transaction\nCREATE TABLE a (x integer);\nINSERT INTO a SELECT x FROM seed;\n",
		"1-a.down.sql": "DROP TABLE a;",
	})
	set := load(t, dir)
	r := open(t, b.url)
	if _, err := r.Up(ctx, set, Expand, nil); err == nil {
		t.Fatal("Up: got no error, want the failing INSERT")
	}
	if _, err := r.Repair(ctx, set, RepairOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.Status(ctx, set); st[0].State != StatePartial {
		t.Errorf("Repair without id changed a partial row: state %q", st[0].State)
	}
	id := uint64(1)
	done, err := r.Repair(ctx, set, RepairOptions{ID: &id})
	if err != nil || len(done) != 1 || !strings.Contains(done[0].Did, "statements 1 to 1 had run") {
		t.Fatalf("Repair 1: got %+v, %v; want the row forgotten with a warning about statement 1", done, err)
	}
	if st, _ := r.Status(ctx, set); st[0].State != StatePending {
		t.Errorf("after repair: state %q, want pending", st[0].State)
	}
	// Undo what ran, as the message says, and run it whole.
	if _, err := r.conn.ExecContext(ctx, "DROP TABLE a; CREATE TABLE seed (x integer)"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Up(ctx, set, Expand, nil); err != nil {
		t.Fatalf("Up after repair: %v", err)
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
	if err != nil || len(p) != 1 || p[0].ID != 1 {
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
	if !errors.As(err, &poe) || poe.Expand.ID != 3 || poe.Contract.ID != 2 {
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

func TestAdoptGolangMigrate(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := writeFiles(t, t.TempDir(), formatFiles[FormatGolangMigrate])
		set := load(t, dir)
		r := open(t, b.url)
		// What golang-migrate left: migrations 1 and 2 applied.
		for _, q := range []string{
			"CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
			"INSERT INTO schema_migrations VALUES (2, true)",
			set.Migrations[0].Up.SQL, set.Migrations[1].Up.SQL,
		} {
			if _, err := r.conn.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		_, err := r.Adopt(ctx, set, FromGolangMigrate, "")
		if err == nil || !strings.Contains(err.Error(), "version 2 is marked dirty") {
			t.Fatalf("Adopt of a dirty table: got %v, want a refusal", err)
		}
		if ids := appliedIDs(t, r); len(ids) != 0 {
			t.Errorf("refused adopt recorded %v", ids)
		}
		if _, err := r.conn.ExecContext(ctx, "UPDATE schema_migrations SET dirty = false"); err != nil {
			t.Fatal(err)
		}
		got, err := r.Adopt(ctx, set, FromGolangMigrate, "")
		if err != nil || len(got) != 2 {
			t.Fatalf("Adopt: got %v, %v; want 2 migrations", got, err)
		}
		if diff := cmp.Diff([]uint64{1, 2}, appliedIDs(t, r)); diff != "" {
			t.Errorf("applied after adopt (-want +got):\n%s", diff)
		}
		// Nothing runs twice: the pending one is only migration 3.
		p, err := r.Pending(ctx, set, Contract)
		if err != nil || len(p) != 1 || p[0].ID != 3 {
			t.Errorf("Pending after adopt: got %v, %v; want [3]", p, err)
		}
		if again, err := r.Adopt(ctx, set, FromGolangMigrate, ""); err != nil || len(again) != 0 {
			t.Errorf("second Adopt: got %v, %v; want nothing new", again, err)
		}
	})
}

func TestAdoptGoose(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	set := load(t, writeFiles(t, t.TempDir(), formatFiles[FormatGoose]))
	r := open(t, b.url)
	for _, q := range []string{
		"CREATE TABLE goose_db_version (id integer PRIMARY KEY, version_id bigint, is_applied boolean, tstamp text)",
		"INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (20240101000001, true), (20240101000002, true), (20240101000002, false)",
	} {
		if _, err := r.conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	got, err := r.Adopt(ctx, set, FromGoose, "")
	if err != nil || len(got) != 1 || got[0].ID != 20240101000001 {
		t.Fatalf("Adopt goose: got %v, %v; want only 20240101000001 (2 was rolled back)", got, err)
	}
}
