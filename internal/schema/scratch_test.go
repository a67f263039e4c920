package schema

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/internal/pgtest"
)

// pgVersionRows adds version tables of several tools, an application
// table with rows that must not be copied and one named in DataTables.
const pgVersionRows = `
CREATE TABLE schema_migrations (version varchar PRIMARY KEY);
INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240202000000');
CREATE TABLE "SequelizeMeta" (name varchar PRIMARY KEY);
INSERT INTO "SequelizeMeta" VALUES ('20240101-create-users.js');
CREATE TABLE knex_migrations (id serial PRIMARY KEY, name text);
INSERT INTO knex_migrations (name) VALUES ('001_users.js'), ('002_orgs.js');
CREATE SCHEMA app;
CREATE TABLE app.schema_version (version int);
INSERT INTO app.schema_version VALUES (112);
CREATE TABLE settings (key text PRIMARY KEY, value text);
INSERT INTO settings VALUES ('theme', 'dark');
INSERT INTO users (id, email) VALUES (1, 'a@example.com');
`

func pgQueryStrings(t *testing.T, url, query string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

func databases(t *testing.T, url string) []string {
	return pgQueryStrings(t, url, `SELECT datname FROM pg_database WHERE strpos(datname, '_cutover_preview_') > 0 ORDER BY 1`)
}

func TestScratchPostgres(t *testing.T) {
	c := pgtest.Start(t)
	live := c.CreateDB(t, "live")
	pgExec(t, live, pgBase+pgVersionRows)
	ctx := context.Background()
	var logs []string
	s, err := NewScratch(ctx, live, ScratchOptions{DataTables: []string{"settings"}, Log: func(l string) { logs = append(logs, l) }})
	if err != nil {
		t.Fatalf("NewScratch: %v", err)
	}
	defer s.Close(ctx)
	if !regexp.MustCompile(`^postgres://postgres@127\.0\.0\.1:\d+/t\d+_live_cutover_preview_\d+_[0-9a-f]{6}\?sslmode=disable$`).MatchString(s.URL()) {
		t.Errorf("URL() = %q, want the live URL with a scratch database's name", s.URL())
	}
	if d := Diff(snapshot(t, live), snapshot(t, s.URL())); len(d) != 0 {
		t.Errorf("the copy's schema differs from the live one:\n%s", changeLines(d))
	}
	for query, want := range map[string][]string{
		`SELECT version FROM schema_migrations ORDER BY 1`: {"20240101000000", "20240202000000"},
		`SELECT name FROM "SequelizeMeta"`:                 {"20240101-create-users.js"},
		`SELECT version::text FROM app.schema_version`:     {"112"},
		`SELECT value FROM settings`:                       {"dark"},
		`SELECT email FROM users`:                          {},
		`SELECT name FROM orgs`:                            {},
	} {
		if diff := cmp.Diff(want, pgQueryStrings(t, s.URL(), query)); diff != "" {
			t.Errorf("%s on the copy (-want +got):\n%s", query, diff)
		}
	}
	// The tool's next row takes the next id: the sequence came along.
	if got := pgQueryStrings(t, s.URL(), `INSERT INTO knex_migrations (name) VALUES ('003_x.js') RETURNING id::text`); !slices.Equal(got, []string{"3"}) {
		t.Errorf("next knex_migrations id on the copy = %v, want 3", got)
	}
	// A migration on the copy leaves the live database alone.
	pgExec(t, s.URL(), `DROP TABLE sessions`)
	if _, ok := snapshot(t, live).Tables["public.sessions"]; !ok {
		t.Error("dropping a table on the copy dropped it on the live database")
	}
	if len(logs) == 0 {
		t.Error("no progress lines logged")
	}
	// Close drops the copy even while a session is still connected to it.
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := databases(t, live); len(got) != 0 {
		t.Errorf("scratch databases after Close: %v", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestScratchPostgresEncoding(t *testing.T) {
	c := pgtest.Start(t)
	live := c.CreateDB(t, "latin1")
	name := "latin1_live"
	pgExec(t, live, `CREATE DATABASE latin1_live TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`)
	t.Cleanup(func() { pgExec(t, c.URL(), `DROP DATABASE IF EXISTS latin1_live WITH (FORCE)`) })
	liveURL := strings.Replace(live, live[strings.LastIndexByte(live, '/')+1:strings.IndexByte(live, '?')], name, 1)
	pgExec(t, liveURL, `CREATE TABLE t (name text DEFAULT 'café')`)
	ctx := context.Background()
	s, err := NewScratch(ctx, liveURL, ScratchOptions{})
	if err != nil {
		t.Fatalf("NewScratch: %v", err)
	}
	defer s.Close(ctx)
	if got := pgQueryStrings(t, s.URL(), `SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()`); !slices.Equal(got, []string{"LATIN1"}) {
		t.Errorf("encoding of the copy = %v, want LATIN1", got)
	}
	if d := Diff(snapshot(t, liveURL), snapshot(t, s.URL())); len(d) != 0 {
		t.Errorf("the copy's schema differs from the live one:\n%s", changeLines(d))
	}
}

func TestScratchPostgresDropsLeftovers(t *testing.T) {
	c := pgtest.Start(t)
	live := c.CreateDB(t, "leftover")
	prefix := strings.TrimSuffix(strings.TrimPrefix(live[strings.LastIndexByte(live, '/')+1:], ""), "?sslmode=disable")
	old := fmt.Sprintf("%s_cutover_preview_%d_abcdef", prefix, time.Now().Add(-2*time.Hour).Unix())
	recent := fmt.Sprintf("%s_cutover_preview_%d_abcdef", prefix, time.Now().Add(-time.Minute).Unix())
	other := fmt.Sprintf("otherapp_cutover_preview_%d_abcdef", time.Now().Add(-2*time.Hour).Unix())
	for _, db := range []string{old, recent, other} {
		pgExec(t, live, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
		t.Cleanup(func() { pgExec(t, live, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()) })
	}
	ctx := context.Background()
	s, err := NewScratch(ctx, live, ScratchOptions{})
	if err != nil {
		t.Fatalf("NewScratch: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []string{other, recent}
	if diff := cmp.Diff(want, databases(t, live)); diff != "" {
		t.Errorf("scratch databases left (-want +got):\n%s", diff)
	}
}

func TestScratchPostgresWithoutCreateDB(t *testing.T) {
	c := pgtest.Start(t)
	live := c.CreateDB(t, "nocreatedb")
	pgExec(t, live, `CREATE ROLE app LOGIN`)
	t.Cleanup(func() { pgExec(t, c.URL(), `DROP ROLE IF EXISTS app`) })
	appURL := strings.Replace(live, "postgres://postgres@", "postgres://app:secret@", 1)
	_, err := NewScratch(context.Background(), appURL, ScratchOptions{})
	if err == nil {
		t.Fatal("NewScratch succeeded for a role without CREATEDB")
	}
	for _, want := range []string{`role "app" lacks the CREATEDB privilege`, `ALTER ROLE "app" CREATEDB`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows the password", err)
	}
}

func TestScratchPostgresWithoutPgDump(t *testing.T) {
	c := pgtest.Start(t)
	live := c.CreateDB(t, "nopgdump")
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	defer func(d string) { toolDirs = d }(toolDirs)
	toolDirs = filepath.Join(empty, "*", "bin")
	_, err := NewScratch(context.Background(), live, ScratchOptions{})
	if err == nil {
		t.Fatal("NewScratch succeeded without pg_dump")
	}
	for _, want := range []string{"no pg_dump and psql found in PATH", "apt-get install postgresql-client-15"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := databases(t, live); len(got) != 0 {
		t.Errorf("scratch databases left: %v", got)
	}
}

func TestScratchPostgresOldPgDump(t *testing.T) {
	c := pgtest.Start(t)
	live := c.CreateDB(t, "oldpgdump")
	dir := t.TempDir()
	for _, tool := range []string{"pg_dump", "psql"} {
		script := "#!/bin/sh\necho '" + tool + " (PostgreSQL) 9.6.24'\n"
		if err := os.WriteFile(filepath.Join(dir, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	defer func(d string) { toolDirs = d }(toolDirs)
	toolDirs = filepath.Join(dir, "*", "bin")
	_, err := NewScratch(context.Background(), live, ScratchOptions{})
	if err == nil {
		t.Fatal("NewScratch succeeded with pg_dump 9.6 against PostgreSQL 15")
	}
	for _, want := range []string{"no pg_dump of version 15 or newer", filepath.Join(dir, "pg_dump") + " (9)", "postgresql-client-15"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestScratchSQLite(t *testing.T) {
	live := sqliteURL(t)
	sqliteExec(t, live, `PRAGMA journal_mode=WAL;`+sqliteBase+`
CREATE TABLE schema_version (version INTEGER); INSERT INTO schema_version VALUES (112);`)
	ctx := context.Background()
	dir := t.TempDir()
	// Leftovers of a killed process: the old one goes, the recent one
	// (another preview may be using it) and other files stay.
	old := fmt.Sprintf("cutover-preview-%d-abcdef.db", time.Now().Add(-2*time.Hour).Unix())
	recent := fmt.Sprintf("cutover-preview-%d-abcdef.db", time.Now().Add(-time.Minute).Unix())
	for _, f := range []string{old, old + "-wal", recent, "app.db"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewScratch(ctx, live, ScratchOptions{TempDir: dir})
	if err != nil {
		t.Fatalf("NewScratch: %v", err)
	}
	path := strings.TrimPrefix(s.URL(), "sqlite://")
	if filepath.Dir(path) != dir || !strings.HasPrefix(s.URL(), "sqlite:///") {
		t.Errorf("URL() = %q, want sqlite:///… in %s", s.URL(), dir)
	}
	if d := Diff(snapshot(t, live), snapshot(t, s.URL())); len(d) != 0 {
		t.Errorf("the copy's schema differs from the live one:\n%s", changeLines(d))
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var version int
	err = db.QueryRow(`SELECT version FROM schema_version`).Scan(&version)
	db.Close()
	if err != nil || version != 112 {
		t.Errorf("schema_version on the copy: %d, %v; want 112", version, err)
	}
	sqliteExec(t, s.URL(), `DROP TABLE sessions`)
	if _, ok := snapshot(t, live).Tables["sessions"]; !ok {
		t.Error("dropping a table on the copy dropped it on the live database")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var left []string
	entries, _ := os.ReadDir(dir) // An error shows as a missing file.
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"app.db", recent}; !slices.Equal(left, want) {
		t.Errorf("files after Close: %v, want %v", left, want)
	}
}

func TestSchemaJSONRoundTrip(t *testing.T) {
	c := pgtest.Start(t)
	url := c.CreateDB(t, "json")
	pgExec(t, url, pgBase+`CREATE MATERIALIZED VIEW org_count AS SELECT count(*) AS n FROM orgs;`)
	sqlite := sqliteURL(t)
	sqliteExec(t, sqlite, sqliteBase)
	for _, s := range []*Schema{snapshot(t, url), snapshot(t, sqlite)} {
		t.Run(s.Dialect, func(t *testing.T) {
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var back Schema
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(s, &back); diff != "" {
				t.Errorf("round trip (-before +after):\n%s", diff)
			}
			if d := Diff(s, &back); len(d) != 0 {
				t.Errorf("Diff after the round trip:\n%s", changeLines(d))
			}
			// Stable: the same schema encodes to the same bytes.
			again, _ := json.Marshal(&back)
			if string(again) != string(b) {
				t.Error("encoding the decoded schema gives other bytes")
			}
		})
	}
}

func TestChangeJSON(t *testing.T) {
	c := Change{Kind: KindBreaking, Rule: RuleDropTable, Object: "table public.sessions", Detail: "dropped"}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"kind":"breaking","rule":"drop-table","object":"table public.sessions","detail":"dropped"}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var back Change
	if err := json.Unmarshal(b, &back); err != nil || back != c {
		t.Errorf("decoded %+v, %v; want %+v", back, err, c)
	}
}

func TestScratchPostgresRestoreFails(t *testing.T) {
	c := pgtest.Start(t)
	live := c.CreateDB(t, "restorefails")
	pgExec(t, live, pgBase)
	real, err := findTools(context.Background(), 15)
	if err != nil {
		t.Skipf("no pg_dump: %v", err)
	}
	dir := t.TempDir()
	if err := os.Symlink(real.pgDump, filepath.Join(dir, "pg_dump")); err != nil {
		t.Fatal(err)
	}
	// A psql that stops at the first statement, as ON_ERROR_STOP does.
	psql := "#!/bin/sh\nhead -c 1 >/dev/null\necho 'psql:<stdin>:1: ERROR:  extension \"postgis\" is not available' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, "psql"), []byte(psql), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	defer func(d string) { toolDirs = d }(toolDirs)
	toolDirs = filepath.Join(dir, "*", "bin")
	_, err = NewScratch(context.Background(), live, ScratchOptions{})
	if err == nil {
		t.Fatal("NewScratch succeeded though psql failed")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"copy schema", `extension "postgis" is not available`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := databases(t, live); len(got) != 0 {
		t.Errorf("scratch databases left after the failure: %v", got)
	}
}
