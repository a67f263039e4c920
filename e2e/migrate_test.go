package e2e

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
	"github.com/cutover/cutover/internal/pgtest"
)

// migration files, shared by the releases that ship them.
var (
	createUsers = [2]string{"CREATE TABLE users (id integer PRIMARY KEY, name text);\n", "DROP TABLE users;\n"}
	addEmail    = [2]string{"ALTER TABLE users ADD COLUMN email text;\n", "ALTER TABLE users DROP COLUMN email;\n"}
	dropName    = [2]string{"-- cutover:phase contract\nALTER TABLE users DROP COLUMN name;\n", "ALTER TABLE users ADD COLUMN name text;\n"}
	dropNameNow = [2]string{"ALTER TABLE users DROP COLUMN name;\n", "ALTER TABLE users ADD COLUMN name text;\n"}
)

// releaseWithMigrations writes a release source with the given migrations
// (native format: <id>-<name>.up.sql / .down.sql).
func (e *env) releaseWithMigrations(v string, migs map[string][2]string) string {
	e.t.Helper()
	dir := e.release(v, "")
	md := filepath.Join(dir, "migrations")
	if err := os.MkdirAll(md, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for name, sqls := range migs {
		os.WriteFile(filepath.Join(md, name+".up.sql"), []byte(sqls[0]), 0o644)
		os.WriteFile(filepath.Join(md, name+".down.sql"), []byte(sqls[1]), 0o644)
	}
	return dir
}

func TestMigrationsAcrossDeploysSQLite(t *testing.T) {
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "app.db")
	testMigrationsAcrossDeploys(t, url, "sqlite", "sqlite", filepath.Join(dir, "app.db"))
}

func TestMigrationsAcrossDeploysPostgres(t *testing.T) {
	url := pgtest.Start(t).CreateDB(t, "e2e")
	testMigrationsAcrossDeploys(t, url, "pgx", "postgres", url)
}

// testMigrationsAcrossDeploys: v2 adds a column (expand) under load with
// no failed request; a release dropping a column as expand is refused by
// lint with nothing applied; v3 drops it as contract once v2 is alone;
// rollback from v3 to v1 is refused, and --force overrides.
func testMigrationsAcrossDeploys(t *testing.T, url, driver, dialect, dsn string) {
	e := newEnv(t, settings{instances: 2, extra: "[database]\nurl = \"" + url + "\"\ncontract = \"auto\"\n"})
	v1 := e.releaseWithMigrations("v1", map[string][2]string{"1-create-users": createUsers})
	v2 := e.releaseWithMigrations("v2", map[string][2]string{"1-create-users": createUsers, "2-add-email": addEmail})
	bad := e.releaseWithMigrations("v3bad", map[string][2]string{"1-create-users": createUsers, "2-add-email": addEmail, "3-drop-name": dropNameNow})
	v3 := e.releaseWithMigrations("v3", map[string][2]string{"1-create-users": createUsers, "2-add-email": addEmail, "3-drop-name": dropName})
	e.serve()

	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	columns := func() string {
		t.Helper()
		q := `SELECT column_name FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position`
		if dialect == "sqlite" {
			q = `SELECT name FROM pragma_table_info('users') ORDER BY cid`
		}
		rows, err := db.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatalf("read columns: %v", err)
		}
		defer rows.Close()
		var cols []string
		for rows.Next() {
			var c string
			rows.Scan(&c)
			cols = append(cols, c)
		}
		return strings.Join(cols, ",")
	}

	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatalf("deploy v1: %v", err)
	}
	if got := columns(); got != "id,name" {
		t.Fatalf("after v1: columns %q, want id,name", got)
	}

	gen := load.Start(load.Options{URL: e.url("/"), Rate: 300, FreshShare: 0.2, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "v2 expand")
	_, _, err = e.deploy(deploy.Request{Source: v2})
	rep := gen.Stop()
	if err != nil {
		t.Fatalf("deploy v2: %v", err)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed during the expand deploy: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	if got := columns(); got != "id,name,email" {
		t.Fatalf("after v2: columns %q, want id,name,email", got)
	}

	var events []string
	_, err = e.client.Deploy(context.Background(), deploy.Request{Source: bad}, func(ev deploy.Event) {
		events = append(events, ev.Message)
		events = append(events, ev.Lines...)
	})
	all := strings.Join(events, "\n")
	if err == nil || !strings.Contains(all, "drop-column") || !strings.Contains(all, "3-drop-name.up.sql:1") {
		t.Fatalf("deploy of an expand DROP COLUMN: err %v; want refused with rule drop-column at 3-drop-name.up.sql:1; events:\n%s", err, all)
	}
	if got := columns(); got != "id,name,email" {
		t.Errorf("the refused release changed the schema: %q", got)
	}
	if _, v, _, _ := get(e.url("/")); v != "v2" {
		t.Errorf("after the refused deploy %q serves, want v2", v)
	}

	// While a release in preview runs beside the live one, `migrate
	// contract` refuses: contract migrations are for when old code is gone.
	if res, err := e.client.Deploy(context.Background(), deploy.Request{Source: v3, Preview: true}, nil); err != nil || res.Type != "preview" {
		t.Fatalf("preview of v3: %+v %v", res, err)
	}
	if _, stderr, code := e.run("migrate", "contract"); code != 1 || !strings.Contains(stderr, "contract migrations") {
		t.Errorf("migrate contract beside a preview: exit %d, %q; want refused", code, stderr)
	}
	if _, _, code := e.run("abort"); code != 0 {
		t.Fatalf("abort the preview: exit %d", code)
	}
	if got := columns(); got != "id,name,email" {
		t.Errorf("the refused contract changed the schema: %q", got)
	}

	if _, _, err := e.deploy(deploy.Request{Source: v3}); err != nil {
		t.Fatalf("deploy v3: %v", err)
	}
	if got := columns(); got != "id,email" {
		t.Errorf("after v3 (contract): columns %q, want id,email", got)
	}

	_, err = e.client.Deploy(context.Background(), deploy.Request{Rollback: true, Release: "v1"}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.KindRefused || !strings.Contains(ae.Msg, "3 drop-name") {
		t.Fatalf("rollback to v1: %v; want refused naming contract migration 3 drop-name", err)
	}
	_, stderr, code := e.run("rollback", "v1")
	if code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("cutover rollback v1: exit %d, %q; want exit 1 mentioning --force", code, stderr)
	}
	if _, v, _, _ := get(e.url("/")); v != "v3" {
		t.Errorf("after the refused rollback %q serves, want v3", v)
	}
	if _, _, err := e.deploy(deploy.Request{Rollback: true, Release: "v1", Force: true}); err != nil {
		t.Fatalf("rollback --force to v1: %v", err)
	}
	if _, v, _, _ := get(e.url("/")); v != "v1" {
		t.Errorf("after rollback --force %q serves, want v1", v)
	}
}
