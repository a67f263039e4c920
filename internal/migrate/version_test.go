package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseVersion(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Version
		err  string
	}{
		{"42", "42", ""},
		{"0042", "42", ""},
		{"0", "0", ""},
		{"1.1", "1.1", ""},
		{"2_0_03", "2.0.3", ""},
		{"4.1_2", "4.1.2", ""},
		{"1.0", "1.0", ""},
		{"R__views", "R__views", ""},
		{"", "", "empty version"},
		{"R__", "", "needs a description"},
		{"1..2", "", "single dots"},
		{"1.", "", "single dots"},
		{".1", "", "single dots"},
		{"1.x", "", `part "x"`},
		{"9223372036854775808", "", "below 2⁶³"},
	} {
		got, err := ParseVersion(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseVersion(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseVersion(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestVersionOrder: Flyway orders versions numerically per part (1.9 before
// 1.10), a missing part counts as 0, and repeatable migrations come after
// every versioned one, by description.
func TestVersionOrder(t *testing.T) {
	want := []Version{"0", "1", "1.0.1", "1.1", "1.9", "1.10", "2", "10", "20200823093500", "R__a_views", "R__b_functions"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortStableFunc(got, Version.Compare)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sorted versions (-want +got):\n%s", diff)
	}
	if c := Version("1").Compare("1.0"); c != 0 {
		t.Errorf("1 vs 1.0: got %d, want 0 (the same version)", c)
	}
	if n, ok := Version("1.1").Int(); ok {
		t.Errorf("1.1.Int() = %d, true; want false", n)
	}
	if got := fmt.Sprintf("%d %s %v", Version("1.10"), Version("R__x"), VersionOf(42)); got != "1.10 R__x 42" {
		t.Errorf("formatting: got %q", got)
	}
}

func TestLoadDirFlyway(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"V1__init.sql":       "SELECT 1;",
		"V1.10__ten.sql":     "SELECT 110;",
		"V1.9__nine.sql":     "SELECT 19;",
		"V1_1__one.sql":      "SELECT 11;",
		"V2__two.sql":        "SELECT 2;",
		"R__views.sql":       "SELECT 'views';",
		"R__a_functions.sql": "SELECT 'functions';",
	})
	set := load(t, dir)
	var got []string
	for _, m := range set.Migrations {
		got = append(got, m.String())
	}
	want := []string{"1 init", "1.1 one", "1.9 nine", "1.10 ten", "2 two", "R__a_functions a_functions", "R__views views"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if m := set.Find("1.10"); m == nil || m.Name != "ten" || m.Repeatable() {
		t.Errorf("Find(1.10) = %v", m)
	}
	if m := set.Find("R__views"); m == nil || !m.Repeatable() || m.Down != nil {
		t.Errorf("Find(R__views) = %+v, want the repeatable migration without down", m)
	}

	for _, dup := range [][2]string{{"V1.1__a.sql", "V1_1__b.sql"}, {"V1__a.sql", "V1.0__b.sql"}, {"V1.01__a.sql", "V1.1__b.sql"}} {
		dir := writeFiles(t, t.TempDir(), map[string]string{dup[0]: "SELECT 1;", dup[1]: "SELECT 2;"})
		_, err := LoadDir(dir, FormatAuto)
		if err == nil || !strings.Contains(err.Error(), "duplicate id") || !strings.Contains(err.Error(), dup[0]) || !strings.Contains(err.Error(), dup[1]) {
			t.Errorf("LoadDir(%s, %s): got %v, want a duplicate id error naming both", dup[0], dup[1], err)
		}
	}
}

// flywayFiles is a Flyway directory with dotted versions and a repeatable
// migration that depends on the versioned ones.
var flywayFiles = map[string]string{
	"V1__users.sql":       "CREATE TABLE users (id integer PRIMARY KEY, name text);",
	"V1.9__email.sql":     "ALTER TABLE users ADD COLUMN email text;",
	"V1.10__locale.sql":   "ALTER TABLE users ADD COLUMN locale text;",
	"V2_0_1__active.sql":  "ALTER TABLE users ADD COLUMN active boolean;",
	"R__users_view.sql":   "DROP VIEW IF EXISTS user_names;\nCREATE VIEW user_names AS SELECT name, locale FROM users;",
	"V3__drop_active.sql": "-- cutover:phase contract\nALTER TABLE users DROP COLUMN active;",
}

func TestFlywayDottedAndRepeatable(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := writeFiles(t, t.TempDir(), flywayFiles)
		r := open(t, b.url)

		// The repeatable migration runs after the versioned expand ones,
		// although a contract migration is pending before it.
		var order []Version
		res, err := r.Up(ctx, load(t, dir), Expand, func(e Event) {
			if e.Kind == EventDone {
				order = append(order, e.Migration.ID)
			}
		})
		if err != nil {
			t.Fatalf("Up expand: %v", err)
		}
		if diff := cmp.Diff([]Version{"1", "1.9", "1.10", "2.0.1", "R__users_view"}, order); diff != "" {
			t.Errorf("applied in order (-want +got):\n%s", diff)
		}
		if len(res.Done) != 5 {
			t.Errorf("Up expand applied %d, want 5", len(res.Done))
		}
		if _, err := r.Up(ctx, load(t, dir), Contract, nil); err != nil {
			t.Fatalf("Up contract: %v", err)
		}
		if diff := cmp.Diff([]Version{"1", "1.9", "1.10", "2.0.1", "3", "R__users_view"}, appliedIDs(t, r)); diff != "" {
			t.Errorf("version table (-want +got):\n%s", diff)
		}

		// Unchanged: nothing to do. Changed repeatable: pending, and it
		// runs again, alone.
		if res, err := r.Up(ctx, load(t, dir), Expand, nil); err != nil || len(res.Done) != 0 {
			t.Fatalf("second Up: %d applied, %v; want 0, nil", len(res.Done), err)
		}
		writeFiles(t, dir, map[string]string{"R__users_view.sql": "DROP VIEW IF EXISTS user_names;\nCREATE VIEW user_names AS SELECT name, locale, email FROM users;"})
		set := load(t, dir)
		st, err := r.Status(ctx, set)
		if err != nil {
			t.Fatal(err)
		}
		states := map[Version]State{}
		for _, s := range st {
			states[s.ID] = s.State
		}
		if states["R__users_view"] != StatePending || states["1.10"] != StateApplied {
			t.Errorf("status after editing the repeatable: got %v, want R__users_view pending, 1.10 applied", states)
		}
		res, err = r.Up(ctx, set, Expand, nil)
		if err != nil || len(res.Done) != 1 || res.Done[0].Migration.ID != "R__users_view" {
			t.Fatalf("Up after editing the repeatable: got %v, %v; want it alone", res.Done, err)
		}
		var n int
		if err := r.conn.QueryRowContext(ctx, "SELECT count(email) FROM user_names").Scan(&n); err != nil {
			t.Errorf("the view was not replaced: %v", err)
		}

		// A changed versioned migration is still an error.
		writeFiles(t, dir, map[string]string{"V1.9__email.sql": "ALTER TABLE users ADD COLUMN email varchar(200);"})
		var ce *ChecksumError
		if _, err := r.Up(ctx, load(t, dir), Expand, nil); !errors.As(err, &ce) || ce.ID != "1.9" {
			t.Errorf("Up with V1.9 edited: got %v, want a ChecksumError for 1.9", err)
		}
	})
}

// legacyTable is the version table as cutover created it before dotted
// versions: keyed by an integer id.
func legacyTable(dialect string) string {
	if dialect == DialectPostgres {
		return `CREATE TABLE cutover_migrations (
	id bigint PRIMARY KEY, name text NOT NULL, phase text NOT NULL, checksum text NOT NULL,
	applied_at timestamptz NOT NULL, duration_ms bigint NOT NULL DEFAULT 0, release text NOT NULL DEFAULT '',
	status text NOT NULL CHECK (status IN ('applied', 'failed', 'partial')),
	failed_statement integer, resume_checksum text, error text)`
	}
	return `CREATE TABLE cutover_migrations (
	id INTEGER PRIMARY KEY, name TEXT NOT NULL, phase TEXT NOT NULL, checksum TEXT NOT NULL,
	applied_at TEXT NOT NULL, duration_ms INTEGER NOT NULL DEFAULT 0, release TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL CHECK (status IN ('applied', 'failed', 'partial')),
	failed_statement INTEGER, resume_checksum TEXT, error TEXT)`
}

// createLegacy makes the database of an existing install: the legacy
// version table with V1 applied by an earlier cutover, and its table.
func createLegacy(t *testing.T, b backend) {
	t.Helper()
	ctx := context.Background()
	r := open(t, b.url, func(o *Options) { o.Table = "scratch" })
	at := any(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	if b.name == DialectSQLite {
		at = "2025-01-02T03:04:05Z"
	}
	for _, q := range []string{
		legacyTable(b.name),
		flywayFiles["V1__users.sql"],
	} {
		if _, err := r.conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_, err := r.conn.ExecContext(ctx, r.q(`INSERT INTO cutover_migrations (id, name, phase, checksum, applied_at, release, status)
		VALUES (1, 'users', 'expand', $1, $2, 'v1', 'applied')`), Checksum(flywayFiles["V1__users.sql"]), at)
	if err != nil {
		t.Fatalf("insert legacy row: %v", err)
	}
}

func hasVersionColumn(t *testing.T, r *Runner) bool {
	t.Helper()
	if err := r.readShape(context.Background()); err != nil {
		t.Fatal(err)
	}
	return !r.legacyTable
}

// TestUpgradeLegacyTable: the version table of an existing install is read
// as it is, stays as it is while every version is an integer (so an older
// cutover still works with it), and gains a version key, keeping its rows,
// the first time a dotted version is recorded.
func TestUpgradeLegacyTable(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		createLegacy(t, b)

		// Read-only status of the legacy table.
		dir := writeFiles(t, t.TempDir(), map[string]string{"V1__users.sql": flywayFiles["V1__users.sql"], "V2__name.sql": "ALTER TABLE users ADD COLUMN nick text;"})
		ro := open(t, b.url, func(o *Options) { o.ReadOnly = true })
		st, err := ro.Status(ctx, load(t, dir))
		if err != nil || len(st) != 2 || st[0].State != StateApplied || st[0].Applied.Release != "v1" || st[1].State != StatePending {
			t.Fatalf("status of the legacy table: got %+v, %v; want 1 applied by v1, 2 pending", st, err)
		}

		// Integer versions only: applied, the table unchanged. r2 opens
		// now and runs after r upgraded the table.
		r := open(t, b.url)
		r2 := open(t, b.url)
		if _, err := r.Up(ctx, load(t, dir), Expand, nil); err != nil {
			t.Fatalf("Up with integer versions: %v", err)
		}
		if hasVersionColumn(t, r) {
			t.Errorf("the legacy table got a version column although every version is an integer")
		}
		if diff := cmp.Diff([]Version{"1", "2"}, appliedIDs(t, r)); diff != "" {
			t.Errorf("legacy table after Up (-want +got):\n%s", diff)
		}
		if _, err := r.Repair(ctx, load(t, dir), RepairOptions{}); err != nil {
			t.Errorf("Repair on the legacy table: %v", err)
		}

		// A dotted version: the table is upgraded under the lock, and the
		// rows written before stay.
		writeFiles(t, dir, map[string]string{"V2.1__locale.sql": "ALTER TABLE users ADD COLUMN locale text;", "R__view.sql": "DROP VIEW IF EXISTS v;\nCREATE VIEW v AS SELECT id FROM users;"})
		if _, err := r.Up(ctx, load(t, dir), Expand, nil); err != nil {
			t.Fatalf("Up with a dotted version: %v", err)
		}
		if !hasVersionColumn(t, r) {
			t.Errorf("the table has no version column after recording 2.1")
		}
		rows, err := r.Applied(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range rows {
			got = append(got, fmt.Sprintf("%s %s %s", a.ID, a.Release, a.Status))
		}
		if diff := cmp.Diff([]string{"1 v1 applied", "2 test applied", "2.1 test applied", "R__view test applied"}, got); diff != "" {
			t.Errorf("rows after the upgrade (-want +got):\n%s", diff)
		}
		// Integer versions keep their id for those who query the table by
		// id; the others have none.
		var ids []sql.NullInt64
		q, err := r.conn.QueryContext(ctx, "SELECT id FROM cutover_migrations ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		for q.Next() {
			var id sql.NullInt64
			if err := q.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		q.Close()
		want := []sql.NullInt64{{Int64: 1, Valid: true}, {Int64: 2, Valid: true}, {}, {}}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("id column after the upgrade, by version (-want +got):\n%s", diff)
		}

		// A runner opened before the upgrade finds nothing to do.
		if res, err := r2.Up(ctx, load(t, dir), Expand, nil); err != nil || len(res.Done) != 0 {
			t.Errorf("Up by a second runner: got %v, %v; want nothing to do", res.Done, err)
		}
	})
}

// TestLegacyTableDown: Down deletes rows of a legacy table by id.
func TestLegacyTableDown(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	r := open(t, b.url, func(o *Options) { o.Table = "scratch" })
	if _, err := r.conn.ExecContext(ctx, legacyTable(b.name)); err != nil {
		t.Fatal(err)
	}
	r = open(t, b.url)
	set := load(t, writeFiles(t, t.TempDir(), formatFiles[FormatNative]))
	if _, err := r.Up(ctx, set, Expand, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Down(ctx, set, DownTarget{}, nil); err != nil {
		t.Fatalf("Down on a legacy table: %v", err)
	}
	if diff := cmp.Diff([]Version{"1"}, appliedIDs(t, r)); diff != "" || hasVersionColumn(t, r) {
		t.Errorf("after Down (-want +got):\n%s\nversion column: %v", diff, hasVersionColumn(t, r))
	}
}
