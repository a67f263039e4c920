package demoapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	_ "modernc.org/sqlite"             // the "sqlite" driver

	"github.com/cutover/cutover/internal/migrate"
)

// The demo app can own a database the way Rails, Django or Miniflux do:
// it migrates it itself (`cutover demo-app migrate`, the command a
// release phase runs) and reads it on every request to / (DEMO_QUERY).
//
//	DATABASE_URL        postgres://… or sqlite:///path (the name is
//	                    DEMO_DATABASE_URL_ENV's value, if set)
//	DEMO_QUERY          SQL run on every request to /; the first column of
//	                    its first row is in the answer; an error answers
//	                    500 while the health path stays 200, as real apps do
//	DEMO_MIGRATE_DELAY  `migrate` sleeps this long before each migration
//
// `migrate` applies the files db/NNN_name.sql of its working directory in
// NNN order, each in a transaction with its row in demo_schema_version,
// skipping the versions that table already holds; `migrate --contract`
// applies db/contract/NNN_name.sql the same way (the versions share one
// numbering), for a deploy's contract_command. Like many home-grown
// tools it takes no lock: two copies run at once both apply what is
// pending (the table then shows a version twice), which is what a deploy
// tool must prevent.

// MigrationsDir is the demo app's migrations directory, in its working
// directory.
const MigrationsDir = "db"

var migrationName = regexp.MustCompile(`^(\d+)_[A-Za-z0-9_.-]+\.sql$`)

// openDB opens the database named by the environment.
func openDB(env map[string]string) (*sql.DB, string, error) {
	name := "DATABASE_URL"
	if n := env["DEMO_DATABASE_URL_ENV"]; n != "" {
		name = n
	}
	url := env[name]
	if url == "" {
		return nil, "", fmt.Errorf("%s is not set: the demo app's database, postgres://… or sqlite:///path", name)
	}
	dialect, err := migrate.Dialect(url)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	var db *sql.DB
	if dialect == migrate.DialectSQLite {
		path, err := migrate.SQLitePath(url)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		if err != nil {
			return nil, "", err
		}
	} else {
		db, err = sql.Open("pgx", url)
		if err != nil {
			return nil, "", err
		}
		db.SetMaxOpenConns(4)
	}
	return db, dialect, nil
}

// Migrate is `cutover demo-app migrate`: it applies the pending migrations
// of ./db (./db/contract with contract) to the app's database, printing
// one line per migration.
func Migrate(ctx context.Context, stdout, stderr io.Writer, contract bool) error {
	s, err := loadEnv(os.Environ(), ".")
	if err != nil {
		return fmt.Errorf("demo app migrate: %w", err)
	}
	var delay time.Duration
	if v := s["DEMO_MIGRATE_DELAY"]; v != "" {
		if delay, err = time.ParseDuration(v); err != nil || delay < 0 {
			return fmt.Errorf("demo app migrate: DEMO_MIGRATE_DELAY: want a duration such as \"2s\", got %q", v)
		}
	}
	db, dialect, err := openDB(s)
	if err != nil {
		return fmt.Errorf("demo app migrate: %w", err)
	}
	defer db.Close()
	dir := MigrationsDir
	if contract {
		dir = filepath.Join(MigrationsDir, "contract")
	}
	files, err := migrationFiles(dir)
	if err != nil {
		return fmt.Errorf("demo app migrate: %w", err)
	}
	idType := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if dialect == migrate.DialectPostgres {
		idType = "SERIAL PRIMARY KEY"
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS demo_schema_version (
		id `+idType+`, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("demo app migrate: create demo_schema_version: %w", err)
	}
	done := map[int]bool{}
	rows, err := db.QueryContext(ctx, `SELECT version FROM demo_schema_version`)
	if err != nil {
		return fmt.Errorf("demo app migrate: read demo_schema_version: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("demo app migrate: read demo_schema_version: %w", err)
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("demo app migrate: read demo_schema_version: %w", err)
	}
	applied := 0
	for _, f := range files {
		if done[f.version] {
			continue
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		body, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("demo app migrate: %w", err)
		}
		start := time.Now()
		if err := applyOne(ctx, db, dialect, f, string(body)); err != nil {
			fmt.Fprintf(stderr, "demo app migrate: %s failed: %v\n", f.name, err)
			return fmt.Errorf("demo app migrate: %s: %w", f.name, err)
		}
		applied++
		fmt.Fprintf(stdout, "applied %s in %s\n", f.name, time.Since(start).Round(time.Millisecond))
	}
	if applied == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	}
	return nil
}

type migrationFile struct {
	version int
	name    string
	path    string
}

func migrationFiles(dir string) ([]migrationFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var fs []migrationFile
	seen := map[int]string{}
	for _, e := range ents {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("%s: version %q: %w", e.Name(), m[1], err)
		}
		if other, ok := seen[v]; ok {
			return nil, fmt.Errorf("%s and %s have the same version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		fs = append(fs, migrationFile{version: v, name: e.Name(), path: filepath.Join(dir, e.Name())})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].version < fs[j].version })
	return fs, nil
}

func applyOne(ctx context.Context, db *sql.DB, dialect string, f migrationFile, body string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if dialect == migrate.DialectSQLite {
		// database/sql runs one statement per Exec on SQLite.
		for _, stmt := range strings.Split(body, ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
	} else if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	ins := `INSERT INTO demo_schema_version (version, name, applied_at) VALUES (?, ?, ?)`
	if dialect == migrate.DialectPostgres {
		ins = `INSERT INTO demo_schema_version (version, name, applied_at) VALUES ($1, $2, $3)`
	}
	if _, err := tx.ExecContext(ctx, ins, f.version, f.name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return err
	}
	return tx.Commit()
}

// query runs DEMO_QUERY and returns the first column of its first row.
func (a *app) query(ctx context.Context) (string, error) {
	var v sql.NullString
	err := a.db.QueryRowContext(ctx, a.s.query).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "(no rows)", nil
	}
	if err != nil {
		return "", err
	}
	if !v.Valid {
		return "NULL", nil
	}
	return v.String, nil
}
