package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
	"github.com/cutover/cutover/internal/pgtest"
)

// Apps that migrate themselves: the demo app's own migration tool
// (`cutover demo-app migrate`, no lock, its own version table
// demo_schema_version) runs as [database] migrate_command, and each
// release reads the database on every request to / (DEMO_QUERY).

// selfMigrating writes a release of the demo app with its own migrations
// (db/NNN_name.sql) and the query it runs on every request.
func (e *env) selfMigrating(v, query string, migs map[string]string) string {
	e.t.Helper()
	dir := e.release(v, "DEMO_QUERY="+query+"\n")
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	for name, body := range migs {
		if err := os.WriteFile(filepath.Join(dir, "db", name), []byte(body), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return dir
}

var (
	migItems    = map[string]string{"001_items.sql": "CREATE TABLE items (id integer PRIMARY KEY, title text NOT NULL);\nINSERT INTO items VALUES (1, 'first');\n"}
	migNote     = map[string]string{"002_note.sql": "ALTER TABLE items ADD COLUMN note text DEFAULT 'a note';\n"}
	migDropNote = map[string]string{"003_drop_note.sql": "ALTER TABLE items DROP COLUMN note;\n"}
	migBroken   = map[string]string{"003_broken.sql": "ALTER TABLE no_such_table ADD COLUMN x text;\n"}
	migTags     = map[string]string{"003_tags.sql": "CREATE TABLE tags (id integer PRIMARY KEY, name text);\n"}
)

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func selfMigratingEnv(t *testing.T, url, extra string) *env {
	return selfMigratingEnvWith(t, url, extra, settings{})
}

func selfMigratingEnvWith(t *testing.T, url, extra string, s settings) *env {
	return newEnv(t, settings{instances: 2, holdTimeout: s.holdTimeout, extraApp: fmt.Sprintf("[app.env]\nDATABASE_URL = %q\n", url),
		extra: fmt.Sprintf("[database]\nurl = %q\nmigrate_command = \"'%s' demo-app migrate\"\npreview_data = [\"demo_schema_version\"]\n%s", url, bin, extra)})
}

// deployEvents deploys and returns the error and every message and line
// the deploy printed.
func (e *env) deployEvents(req deploy.Request) (string, error) {
	var out []string
	_, err := e.client.Deploy(context.Background(), req, func(ev deploy.Event) {
		out = append(out, ev.Message)
		out = append(out, ev.Lines...)
	})
	if err != nil {
		out = append(out, err.Error())
	}
	return strings.Join(out, "\n"), err
}

// versionsApplied counts each version's rows in demo_schema_version.
func versionsApplied(t *testing.T, db *sql.DB) map[int]int {
	t.Helper()
	rows, err := db.Query(`SELECT version, count(*) FROM demo_schema_version GROUP BY version ORDER BY version`)
	if err != nil {
		t.Fatalf("read demo_schema_version: %v", err)
	}
	defer rows.Close()
	got := map[int]int{}
	for rows.Next() {
		var v, n int
		rows.Scan(&v, &n)
		got[v] = n
	}
	return got
}

func hasColumn(t *testing.T, db *sql.DB, table, column string) bool {
	t.Helper()
	var n int
	err := db.QueryRow(`SELECT count(*) FROM information_schema.columns WHERE table_name = $1 AND column_name = $2`, table, column).Scan(&n)
	if err != nil { // SQLite has no information_schema
		err = db.QueryRow(`SELECT count(*) FROM pragma_table_info($1) WHERE name = $2`, table, column).Scan(&n)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestReleasePhasePostgres is the story on PostgreSQL: the app's
// own migrations run exactly once per deploy under load; a release that
// drops a column the live one reads is refused by the schema preview,
// then shipped held with no failed request; a rollback onto the new
// schema is refused naming the column, and --force shows why.
func TestReleasePhasePostgres(t *testing.T) {
	url := pgtest.Start(t).CreateDB(t, "selfmig")
	testReleasePhase(t, url, "pgx", url)
}

// TestReleasePhaseSQLite is the same story on SQLite, whose preview
// copies the file.
func TestReleasePhaseSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	testReleasePhase(t, "sqlite://"+path, "sqlite", path)
}

func testReleasePhase(t *testing.T, url, driver, dsn string) {
	e := selfMigratingEnv(t, url, "")
	v1 := e.selfMigrating("v1", "SELECT title FROM items ORDER BY id LIMIT 1", migItems)
	v2 := e.selfMigrating("v2", "SELECT note FROM items ORDER BY id LIMIT 1", merge(migItems, migNote))
	v3 := e.selfMigrating("v3", "SELECT title FROM items ORDER BY id LIMIT 1", merge(migItems, migNote, migDropNote))
	e.serve()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	if out, err := e.deployEvents(deploy.Request{Source: v1}); err != nil {
		t.Fatalf("deploy v1: %v\n%s", err, out)
	}
	if code, v, body, _ := get(e.url("/")); code != 200 || v != "v1" || !strings.Contains(body, "first") {
		t.Fatalf("v1 serves %d %q %q", code, v, body)
	}

	gen := load.Start(load.Options{URL: e.url("/"), Rate: 150, FreshShare: 0.2, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "v2")
	out, err := e.deployEvents(deploy.Request{Source: v2})
	rep := gen.Stop()
	if err != nil {
		t.Fatalf("deploy v2: %v\n%s", err, out)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed during the v2 deploy: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	if !strings.Contains(out, "add-column") || !strings.Contains(out, "applied 002_note.sql") {
		t.Errorf("the v2 deploy did not show its preview and release phase:\n%s", out)
	}
	if got := versionsApplied(t, db); got[1] != 1 || got[2] != 1 || len(got) != 2 {
		t.Errorf("demo_schema_version after v2: %v, want each of 1 and 2 applied exactly once", got)
	}
	for _, in := range e.status().Instances {
		if in.Restarts != 0 {
			t.Errorf("instance %s restarted %d times", in.ID, in.Restarts)
		}
	}

	// v3 drops the column v2 reads on every request: refused by default.
	gen = load.Start(load.Options{URL: e.url("/"), Rate: 150, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "v3 refused")
	out, err = e.deployEvents(deploy.Request{Source: v3})
	rep = gen.Stop()
	if err == nil || !strings.Contains(out, "drop-column") || !strings.Contains(out, "items.note") || !strings.Contains(out, "--hold") {
		t.Fatalf("deploy of v3 (drops items.note): err %v; want refused naming the column and the ways out:\n%s", err, out)
	}
	if !hasColumn(t, db, "items", "note") {
		t.Errorf("the refused deploy dropped items.note")
	}
	if got := versionsApplied(t, db); len(got) != 2 {
		t.Errorf("the refused deploy ran migrations: %v", got)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed around the refused deploy: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}

	// --hold ships it: requests wait, none fails.
	gen = load.Start(load.Options{URL: e.url("/"), Rate: 150, FreshShare: 0.2, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "v3 held")
	out, err = e.deployEvents(deploy.Request{Source: v3, Hold: true})
	rep = gen.Stop()
	if err != nil {
		t.Fatalf("deploy --hold of v3: %v\n%s", err, out)
	}
	t.Logf("held deploy of v3 at 150 req/s: %d requests, %d failed, p99 %s, longest %s", rep.Total.Requests, rep.Total.Failed, rep.Total.P99, rep.Total.Max)
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed during the held deploy: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	if hasColumn(t, db, "items", "note") {
		t.Errorf("items.note still there after the held deploy")
	}
	if got := versionsApplied(t, db); got[3] != 1 {
		t.Errorf("demo_schema_version after v3: %v, want 3 applied once", got)
	}

	// Rollback to v2 onto a schema without items.note: refused, naming it.
	stdout, stderr, code := e.run("rollback")
	if code != 1 || !strings.Contains(stderr+stdout, "items.note") {
		t.Fatalf("rollback to v2: exit %d; want 1 naming items.note\n%s\n%s", code, stdout, stderr)
	}
	if _, v, _, _ := get(e.url("/")); v != "v3" {
		t.Errorf("after the refused rollback %q serves, want v3", v)
	}
	// --force goes back, and v2's pages fail: the refusal mattered.
	if _, stderr, code := e.run("rollback", "--force"); code != 0 {
		t.Fatalf("rollback --force: exit %d\n%s", code, stderr)
	}
	gen = load.Start(load.Options{URL: e.url("/"), Rate: 50, Timeout: 5 * time.Second, MaxDuration: 10 * time.Second}, "after forced rollback")
	time.Sleep(2 * time.Second)
	rep = gen.Stop()
	t.Logf("after rollback --force to v2 onto the new schema: %d of %d requests failed (%v)", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	if rep.Total.Failed == 0 {
		t.Errorf("v2 served the schema without items.note with no error: the refusal protected nothing")
	}
}

// halfwaySetup serves v1 of the self-migrating app on a database of its
// own (name) with [database] extra, and writes v2bad, whose third
// migration fails; it returns the env, the database and v2bad's source.
func halfwaySetup(t *testing.T, name, extra string) (*env, *sql.DB, string) {
	t.Helper()
	url := pgtest.Start(t).CreateDB(t, name)
	e := selfMigratingEnv(t, url, extra)
	v1 := e.selfMigrating("v1", "SELECT title FROM items ORDER BY id LIMIT 1", migItems)
	bad := e.selfMigrating("v2bad", "SELECT title FROM items ORDER BY id LIMIT 1", merge(migItems, migNote, migBroken))
	e.serve()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if out, err := e.deployEvents(deploy.Request{Source: v1}); err != nil {
		t.Fatalf("deploy v1: %v\n%s", err, out)
	}
	return e, db, bad
}

// TestReleasePhaseFailsHalfway: a migrate command whose second migration
// fails. With the preview, it fails on the scratch copy and the live
// database is untouched; without, it fails half-way on the live one. In
// both the deploy is aborted and the live release serves every request.
func TestReleasePhaseFailsHalfway(t *testing.T) {
	e, db, bad := halfwaySetup(t, "halfway", "")

	gen := load.Start(load.Options{URL: e.url("/"), Rate: 150, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "bad v2")
	out, err := e.deployEvents(deploy.Request{Source: bad})
	rep := gen.Stop()
	if err == nil || !strings.Contains(out, "scratch copy") || !strings.Contains(out, "no_such_table") {
		t.Fatalf("deploy of a failing migrate command: err %v; want it stopped on the scratch copy with the command's output:\n%s", err, out)
	}
	if hasColumn(t, db, "items", "note") {
		t.Errorf("the preview's failure applied 002 to the live database")
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	if _, v, _, _ := get(e.url("/")); v != "v1" {
		t.Errorf("%q serves, want v1", v)
	}
}

// TestReleasePhaseFailsHalfwayLive: with the preview off, the same command
// fails half-way on the live database (002 applied, 003 failed): the deploy
// stops with the command's output, nothing boots, and v1 serves every
// request (002 was additive).
func TestReleasePhaseFailsHalfwayLive(t *testing.T) {
	e, db, bad := halfwaySetup(t, "halfwaylive", "preview = \"off\"\n")
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 150, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "bad v2 live")
	out, err := e.deployEvents(deploy.Request{Source: bad})
	rep := gen.Stop()
	if err == nil || strings.Contains(out, "scratch copy") || !strings.Contains(out, "no_such_table") || !strings.Contains(out, "exited with status 1") {
		t.Fatalf("deploy of a failing migrate command without preview: err %v; want it stopped with the command's output:\n%s", err, out)
	}
	if got := versionsApplied(t, db); got[2] != 1 || got[3] != 0 {
		t.Errorf("demo_schema_version: %v, want 002 applied and 003 not", got)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	if _, v, _, _ := get(e.url("/")); v != "v1" {
		t.Errorf("%q serves, want v1", v)
	}
	for _, in := range e.status().Instances {
		if in.Release != e.status().Active {
			t.Errorf("instance %s of %s runs beside the live release", in.ID, in.Release)
		}
	}
}

// TestHeldDeployThatWouldTimeOut: a held deploy whose hold would outlast
// proxy.hold_timeout (the preview measured the migrations at 2.5 s, the
// hold_timeout is 2 s) is refused before anything is held or migrated.
func TestHeldDeployThatWouldTimeOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	url := "sqlite://" + path
	e := selfMigratingEnvWith(t, url, "", settings{holdTimeout: "2s"})
	v1 := e.selfMigrating("v1", "SELECT note FROM items ORDER BY id LIMIT 1", merge(migItems, migNote))
	v2 := e.selfMigrating("v2", "SELECT title FROM items ORDER BY id LIMIT 1", merge(migItems, migNote, migDropNote))
	if err := os.WriteFile(filepath.Join(v2, "demo.env"), []byte("DEMO_QUERY=SELECT title FROM items ORDER BY id LIMIT 1\nDEMO_MIGRATE_DELAY=2500ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.serve()
	if out, err := e.deployEvents(deploy.Request{Source: v1}); err != nil {
		t.Fatalf("deploy v1: %v\n%s", err, out)
	}
	out, err := e.deployEvents(deploy.Request{Source: v2, Hold: true})
	if err == nil || !strings.Contains(out, "beyond proxy.hold_timeout 2s") {
		t.Fatalf("held deploy longer than hold_timeout: err %v; want refused before the hold:\n%s", err, out)
	}
	if strings.Contains(out, "requests held") {
		t.Errorf("the refused deploy held requests:\n%s", out)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !hasColumn(t, db, "items", "note") {
		t.Errorf("the refused deploy migrated the live database")
	}
}

// TestPreviewKeepsToTheCopy: an app that reads its database URL from its
// own variable, not url_env, still previews on the copy when that
// variable is in [app.env] (its live URL is swapped for the copy's); when
// the app finds the URL where cutover cannot see it, the preview notices
// that the live schema changed and stops the deploy.
func TestPreviewKeepsToTheCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	url := "sqlite://" + path
	e := newEnv(t, settings{instances: 1,
		extraApp: fmt.Sprintf("[app.env]\nDEMO_DATABASE_URL_ENV = \"MYAPP_DB\"\nMYAPP_DB = %q\n", url),
		extra:    fmt.Sprintf("[database]\nurl = %q\nmigrate_command = \"'%s' demo-app migrate\"\npreview_data = [\"demo_schema_version\"]\n", url, bin)})
	v1 := e.selfMigrating("v1", "SELECT title FROM items ORDER BY id LIMIT 1", migItems)
	v2 := e.selfMigrating("v2", "SELECT title FROM items ORDER BY id LIMIT 1", merge(migItems, migNote))
	v3 := e.selfMigrating("v3", "SELECT title FROM items ORDER BY id LIMIT 1", merge(migItems, migNote, migTags))
	// v3 finds its URL in a file of its own, which cutover does not read.
	if err := os.WriteFile(filepath.Join(v3, "demo.env"), []byte("DEMO_QUERY=SELECT title FROM items ORDER BY id LIMIT 1\nDEMO_DATABASE_URL_ENV=OTHER_DB\nOTHER_DB="+url+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.serve()
	if out, err := e.deployEvents(deploy.Request{Source: v1}); err != nil {
		t.Fatalf("deploy v1: %v\n%s", err, out)
	}
	out, err := e.deployEvents(deploy.Request{Source: v2})
	if err != nil || !strings.Contains(out, "add-column") {
		t.Fatalf("deploy v2 (MYAPP_DB in [app.env]): %v; want the preview to see the new column on the copy:\n%s", err, out)
	}
	out, err = e.deployEvents(deploy.Request{Source: v3})
	if err == nil || !strings.Contains(out, "LIVE database's schema changed") || !strings.Contains(out, "tags") {
		t.Fatalf("deploy v3 (URL in its own file): %v; want the preview to notice the live schema changed:\n%s", err, out)
	}
	if _, v, _, _ := get(e.url("/")); v != "v2" {
		t.Errorf("%q serves, want v2", v)
	}
}
