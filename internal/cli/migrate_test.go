package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"
)

// migrateEnv is a migrations directory and a SQLite URL, with no config
// file anywhere in reach.
type migrateEnv struct {
	dir, db, url string
}

func newMigrateEnv(t *testing.T) migrateEnv {
	t.Helper()
	root := t.TempDir()
	t.Chdir(root)
	t.Setenv("CUTOVER_CONFIG", "")
	e := migrateEnv{dir: filepath.Join(root, "migrations"), db: filepath.Join(root, "app.db")}
	e.url = "sqlite://" + e.db
	files := map[string]string{
		"1-users.up.sql":       "CREATE TABLE users (id integer PRIMARY KEY, name text);",
		"1-users.down.sql":     "DROP TABLE users;",
		"2-email.up.sql":       "ALTER TABLE users ADD COLUMN email text;",
		"2-email.down.sql":     "ALTER TABLE users DROP COLUMN email;",
		"3-drop-name.up.sql":   "-- cutover:phase contract\nALTER TABLE users DROP COLUMN name;",
		"3-drop-name.down.sql": "ALTER TABLE users ADD COLUMN name text;",
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// run runs cutover with the env's --database and --dir after args.
func (e migrateEnv) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	args = append(args, "--database", e.url, "--dir", e.dir)
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func (e migrateEnv) states(t *testing.T) map[string]string {
	t.Helper()
	code, out, stderr := e.run(t, "migrate", "status", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d\n%s", code, stderr)
	}
	var rows []statusJSON
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("status --json output %q: %v", out, err)
	}
	states := map[string]string{}
	for _, r := range rows {
		states[fmt.Sprint(r.ID)] = r.State
	}
	return states
}

func (e migrateEnv) tables(t *testing.T) []string {
	t.Helper()
	db, err := sql.Open("sqlite", e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func TestMigrateCLIUpContractDown(t *testing.T) {
	e := newMigrateEnv(t)
	if diff := cmp.Diff(map[string]string{"1": "pending", "2": "pending", "3": "pending"}, e.states(t)); diff != "" {
		t.Errorf("status before up (-want +got):\n%s", diff)
	}

	code, out, stderr := e.run(t, "migrate", "up", "--dry-run")
	if code != 0 {
		t.Fatalf("up --dry-run: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"would apply 1 users (expand, in a transaction)", "CREATE TABLE users", "would apply 2 email"} {
		if !strings.Contains(out, want) {
			t.Errorf("up --dry-run output %q does not contain %q", out, want)
		}
	}
	if strings.Contains(out, "drop-name") {
		t.Errorf("up --dry-run plans the contract migration: %q", out)
	}
	if got := e.tables(t); len(got) != 0 {
		t.Errorf("up --dry-run created tables %q, want none", got)
	}

	code, out, stderr = e.run(t, "migrate", "up")
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(out, "applied  1 users  (expand") || !strings.Contains(out, "applied  2 email") {
		t.Errorf("up output %q does not list both migrations", out)
	}
	if diff := cmp.Diff(map[string]string{"1": "applied", "2": "applied", "3": "pending"}, e.states(t)); diff != "" {
		t.Errorf("status after up (-want +got):\n%s", diff)
	}

	code, out, _ = e.run(t, "migrate", "status")
	if code != 0 || !strings.Contains(out, "3   drop-name  contract  pending") {
		t.Errorf("status: exit %d, output:\n%s\nwant an aligned pending line for 3", code, out)
	}

	if code, _, stderr = e.run(t, "migrate", "contract"); code != 0 {
		t.Fatalf("contract: exit %d\n%s", code, stderr)
	}
	if got := e.states(t)["3"]; got != "applied" {
		t.Errorf("after contract, 3 is %q, want applied", got)
	}

	code, out, stderr = e.run(t, "migrate", "down", "--dry-run", "--to", "0")
	if code != 0 || !strings.Contains(out, "would undo 3 drop-name") || !strings.Contains(out, "DROP TABLE users") {
		t.Errorf("down --dry-run --to 0: exit %d, output %q %s", code, out, stderr)
	}
	if code, out, stderr = e.run(t, "migrate", "down"); code != 0 || !strings.Contains(out, "undone  3 drop-name") {
		t.Fatalf("down: exit %d, output %q %s", code, out, stderr)
	}
	if code, _, stderr = e.run(t, "migrate", "down", "--to", "0"); code != 0 {
		t.Fatalf("down --to 0: exit %d\n%s", code, stderr)
	}
	if diff := cmp.Diff([]string{"cutover_migrations"}, e.tables(t)); diff != "" {
		t.Errorf("tables after down --to 0 (-want +got):\n%s", diff)
	}
}

func TestMigrateCLIFailureSaysWhere(t *testing.T) {
	e := newMigrateEnv(t)
	if err := os.WriteFile(filepath.Join(e.dir, "2-email.up.sql"), []byte("ALTER TABLE users ADD COLUMN email text;\nALTER TABLE nope ADD COLUMN x text;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.run(t, "migrate", "up")
	if code != ExitFailed {
		t.Errorf("up with a failing migration: exit %d, want %d", code, ExitFailed)
	}
	if !strings.Contains(stderr, "2-email.up.sql:2: statement 2 of 2 failed") || !strings.Contains(stderr, "rolled back") {
		t.Errorf("stderr %q does not say which statement failed and what happened", stderr)
	}
	if got := e.states(t)["2"]; got != "failed" {
		t.Errorf("state of 2: got %q, want failed", got)
	}
}

func TestMigrateCLIUsageErrors(t *testing.T) {
	e := newMigrateEnv(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "down", "zero"}, "want a positive number"},
		{[]string{"migrate", "down", "1", "--to", "0"}, "not both"},
		{[]string{"migrate", "repair", "--mark-applied"}, "needs the ID"},
		{[]string{"migrate", "adopt"}, "needs --from"},
	}
	for _, tt := range tests {
		code, _, stderr := e.run(t, tt.args...)
		if code != ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, stderr, ExitUsage, tt.want)
		}
	}
	// No --database and no config file.
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"migrate", "status", "--dir", e.dir}, &out, &errb)
	if code != ExitUsage || !strings.Contains(errb.String(), "no config file and no --database") {
		t.Errorf("status without database: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = Main(context.Background(), []string{"migrate", "lint", "--dir", e.dir}, &out, &errb)
	if code != ExitUsage || !strings.Contains(errb.String(), "--dialect") {
		t.Errorf("lint without dialect: exit %d, stderr %q", code, errb.String())
	}
}

func TestMigrateCLINew(t *testing.T) {
	e := newMigrateEnv(t)
	code, out, stderr := e.run(t, "migrate", "new", "Add Orders table")
	if code != 0 {
		t.Fatalf("new: exit %d\n%s", code, stderr)
	}
	paths := strings.Fields(out)
	if len(paths) != 2 || !strings.HasSuffix(paths[0], "-add-orders-table.up.sql") || !strings.HasSuffix(paths[1], "-add-orders-table.down.sql") {
		t.Fatalf("new wrote %q, want <stamp>-add-orders-table.up.sql and .down.sql", paths)
	}
	body, err := os.ReadFile(paths[0])
	if err != nil || !strings.Contains(string(body), "cutover:phase contract") {
		t.Errorf("new up file: %q, %v; want the header comment", body, err)
	}
	if got := e.states(t); len(got) != 4 {
		t.Errorf("status after new: got %d migrations, want 4", len(got))
	}
}

func TestMigrateCLILintStatic(t *testing.T) {
	e := newMigrateEnv(t)
	// A URL to a database that does not exist: lint must not connect.
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"migrate", "lint", "--dir", e.dir, "--database", "postgres://nobody@127.0.0.1:1/none", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("lint: exit %d\n%s", code, errb.String())
	}
	var findings []findingJSON
	if err := json.Unmarshal(out.Bytes(), &findings); err != nil {
		t.Errorf("lint --json output %q: %v", out.String(), err)
	}
}

func TestMigrateCLILintDropColumn(t *testing.T) {
	e := newMigrateEnv(t)
	// 3-drop-name is contract: its DROP COLUMN passes.
	code, out, stderr := e.run(t, "migrate", "lint", "--dialect", "postgres")
	if code != 0 {
		t.Fatalf("lint with the DROP COLUMN in contract: exit %d\n%s%s", code, out, stderr)
	}
	// The same statement as expand is refused with rule, line and advice.
	body := "-- drops the name column\nALTER TABLE users DROP COLUMN name;\n"
	if err := os.WriteFile(filepath.Join(e.dir, "3-drop-name.up.sql"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = e.run(t, "migrate", "lint", "--dialect", "postgres", "--json")
	if code != ExitFailed {
		t.Errorf("lint with DROP COLUMN in expand: exit %d, want %d", code, ExitFailed)
	}
	var findings []findingJSON
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		t.Fatalf("lint --json output %q: %v", out, err)
	}
	found := false
	for _, f := range findings {
		if f.Rule == "drop-column" && strings.HasSuffix(f.Path, "3-drop-name.up.sql") && f.Line == 2 && f.Fix != "" && !f.Allowed {
			found = true
		}
	}
	if !found {
		t.Errorf("lint findings %+v: want drop-column at 3-drop-name.up.sql:2 with a fix", findings)
	}
}

func TestMigrateCLILintParseError(t *testing.T) {
	e := newMigrateEnv(t)
	body := "-- cutover:phase expand\nSELECT 1;\n\nSELEC 2;\n"
	if err := os.WriteFile(filepath.Join(e.dir, "3-drop-name.up.sql"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := e.run(t, "migrate", "lint", "--dialect", "postgres")
	if code != ExitFailed {
		t.Fatalf("lint with a syntax error: exit %d, want %d\n%s%s", code, ExitFailed, out, stderr)
	}
	// One line for the finding, at the file's line, then the fix: no
	// statement to show and no second line number from the parser.
	want := "3-drop-name.up.sql:4: error [parse-error] syntax error at or near \"SELEC\": "
	_, after, found := strings.Cut(out, want)
	lines := strings.Split(after, "\n")
	if !found || len(lines) < 2 || !strings.HasPrefix(lines[1], "    instead: fix the syntax") {
		t.Errorf("lint output:\n%s\nwant a line with %q followed by the fix", out, want)
	}
}

// TestMigrateCLIContractCommand: `migrate contract` runs
// [database] contract_command after the contract migrations, with the
// database URL in url_env, and fails with its exit status.
func TestMigrateCLIContractCommand(t *testing.T) {
	e := newMigrateEnv(t)
	cfg := filepath.Join(filepath.Dir(e.dir), "cutover.toml")
	write := func(cmd string) {
		t.Helper()
		body := fmt.Sprintf("[app]\nname = \"shop\"\ncommand = \"./web\"\n[database]\nurl = %q\ncontract_command = %q\nurl_env = \"SHOP_DB\"\n", e.url, cmd)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`echo "contracted $SHOP_DB" > contracted.txt`)
	if code, out, stderr := e.run(t, "migrate", "up"); code != 0 {
		t.Fatalf("migrate up: %d\n%s%s", code, out, stderr)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := run("-c", cfg, "migrate", "contract")
	if code != 0 || !strings.Contains(out, "contract_command") || !strings.Contains(out, "drop-name") {
		t.Fatalf("migrate contract: exit %d\n%s%s", code, out, stderr)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "contracted.txt"))
	if err != nil || strings.TrimSpace(string(b)) != "contracted "+e.url {
		t.Fatalf("contract_command did not run with the URL in SHOP_DB: %q %v", b, err)
	}
	write("echo nope >&2; exit 3")
	code, _, stderr = run("-c", cfg, "migrate", "contract")
	if code == 0 || !strings.Contains(stderr, "exited with status 3") || !strings.Contains(stderr, "nope") {
		t.Fatalf("a failing contract_command: exit %d, stderr %q", code, stderr)
	}
}

// TestMigrateCLIFlyway: new continues dotted versions and writes repeatable
// migrations; status shows versions as written, in Flyway's order.
func TestMigrateCLIFlyway(t *testing.T) {
	e := newMigrateEnv(t)
	if err := os.RemoveAll(e.dir); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"V1__users.sql":    "CREATE TABLE users (id integer PRIMARY KEY, name text);",
		"V1.9__email.sql":  "ALTER TABLE users ADD COLUMN email text;",
		"V1_10__nick.sql":  "ALTER TABLE users ADD COLUMN nick text;",
		"R__user_view.sql": "DROP VIEW IF EXISTS user_names;\nCREATE VIEW user_names AS SELECT name FROM users;",
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := e.run(t, "migrate", "new", "Add locale")
	if code != 0 || filepath.Base(strings.TrimSpace(out)) != "V1.11__add_locale.sql" {
		t.Fatalf("new in a dotted Flyway directory: exit %d, wrote %q, %s; want V1.11__add_locale.sql", code, out, stderr)
	}
	code, out, stderr = e.run(t, "migrate", "new", "--repeatable", "Order stats")
	if code != 0 || filepath.Base(strings.TrimSpace(out)) != "R__order_stats.sql" {
		t.Fatalf("new --repeatable: exit %d, wrote %q, %s; want R__order_stats.sql", code, out, stderr)
	}
	if code, _, stderr := e.run(t, "migrate", "up"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, stderr)
	}
	code, out, stderr = e.run(t, "migrate", "status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(l, e.dir) && f[0] != "ID" {
			ids = append(ids, f[0])
		}
	}
	if diff := cmp.Diff([]string{"1", "1.9", "1.10", "1.11", "R__order_stats", "R__user_view"}, ids); diff != "" {
		t.Errorf("status ids (-want +got):\n%s\n%s", diff, out)
	}
	states := e.states(t)
	if states["1.10"] != "applied" || states["R__user_view"] != "applied" || states["1"] != "applied" {
		t.Errorf("status --json: got %v", states)
	}
	// A repeatable migration is repaired and undone by its name.
	if code, _, stderr := e.run(t, "migrate", "repair", "R__user_view"); code != 1 || !strings.Contains(stderr, "nothing to repair for migration R__user_view") {
		t.Errorf("repair R__user_view: exit %d, %s; want nothing to repair", code, stderr)
	}
	if code, _, stderr := e.run(t, "migrate", "down", "--to", "1.9"); code != 1 || !strings.Contains(stderr, "has no down script") {
		t.Errorf("down --to 1.9 of Flyway: exit %d, %s; want a no-down-script refusal", code, stderr)
	}
}
