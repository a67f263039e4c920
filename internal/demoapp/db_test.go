package demoapp

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeMigrations(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, MigrationsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, MigrationsDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrateSQLite applies pending migrations once, skips applied ones on
// the next run, and a failing one stops the run with its name.
func TestMigrateSQLite(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("DATABASE_URL", "sqlite://"+filepath.Join(dir, "app.db"))
	writeMigrations(t, dir, map[string]string{
		"001_items.sql": "CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT NOT NULL);\nINSERT INTO items (title) VALUES ('first');",
		"002_note.sql":  "ALTER TABLE items ADD COLUMN note TEXT;",
	})
	var out, errb bytes.Buffer
	if err := Migrate(context.Background(), &out, &errb, false); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "applied 001_items.sql") || !strings.Contains(out.String(), "applied 002_note.sql") {
		t.Fatalf("output: %q", out.String())
	}
	out.Reset()
	if err := Migrate(context.Background(), &out, &errb, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "up to date") {
		t.Fatalf("second run: %q", out.String())
	}
	writeMigrations(t, dir, map[string]string{"003_bad.sql": "ALTER TABLE nosuch ADD COLUMN x TEXT;"})
	err := Migrate(context.Background(), &out, &errb, false)
	if err == nil || !strings.Contains(err.Error(), "003_bad.sql") {
		t.Fatalf("a failing migration: err = %v", err)
	}

	// DEMO_QUERY reads the database on every request to /; a query that
	// fails answers 500 while the health path stays 200.
	env, err := loadEnv(os.Environ(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db, _, err := openDB(env)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := newApp(settings{version: "v1", healthPath: "/healthz", query: "SELECT title FROM items LIMIT 1"}, &errb)
	a.db = db
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "(first)") {
		t.Fatalf("GET / = %d %q", rec.Code, rec.Body.String())
	}
	a.s.query = "SELECT gone FROM items"
	rec = httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("GET / with a broken query = %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("health = %d", rec.Code)
	}
}
