package schema

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgExec runs a script of statements on the PostgreSQL database at url.
func pgExec(t testing.TB, url, script string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	// The simple protocol runs several statements in one call.
	if _, err := conn.Exec(ctx, script, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("exec %q: %v", script, err)
	}
}

// sqliteExec runs a script of statements on the SQLite database at url.
func sqliteExec(t testing.TB, url, script string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(url, "sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(script); err != nil {
		t.Fatalf("exec %q: %v", script, err)
	}
}

func sqliteURL(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "app.db")
}

func snapshot(t testing.TB, url string) *Schema {
	t.Helper()
	s, err := Snapshot(context.Background(), url)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return s
}

// summary lists the kind and rule of each change: "breaking drop-column".
func summary(cs []Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s", c.Kind, c.Rule))
	}
	return out
}
