package schema

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/cutover/cutover/internal/migrate"
)

func newSQLiteScratch(ctx context.Context, url string, o ScratchOptions) (*Scratch, error) {
	live, err := migrate.SQLitePath(url)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(live); err != nil {
		return nil, err
	}
	dir := o.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	dropSQLiteLeftovers(abs, o)
	path := filepath.Join(abs, fmt.Sprintf("cutover-preview-%d-%s.db", time.Now().Unix(), randomHex(3)))
	db, conn, err := openSQLite(ctx, url, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()   // Read-only; a close error changes nothing.
	defer conn.Close() // Idem.
	start := time.Now()
	// VACUUM INTO reads in one transaction: a consistent copy while the
	// application keeps writing.
	if _, err := conn.ExecContext(ctx, "VACUUM INTO ?1", path); err != nil {
		removeSQLite(path) // Whatever was written is useless.
		return nil, fmt.Errorf("VACUUM INTO %s: %w", path, err)
	}
	o.logf("copied %s to %s in %s", live, path, time.Since(start).Round(time.Millisecond))
	return &Scratch{
		url:   "sqlite://" + path,
		close: func(context.Context) error { return removeSQLite(path) },
	}, nil
}

// removeSQLite removes a database file and the journal files beside it.
func removeSQLite(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var sqliteScratchName = regexp.MustCompile(`^cutover-preview-(\d+)-[0-9a-f]+\.db$`)

// dropSQLiteLeftovers removes the scratch copies in dir older than
// leftoverAge: a process killed during a preview never closed them, and
// each is a full copy of the database. A failure is only logged.
func dropSQLiteLeftovers(dir string, o ScratchOptions) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		o.logf("look for leftover scratch copies in %s: %v", dir, err)
		return
	}
	for _, e := range entries {
		m := sqliteScratchName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		sec, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)) < leftoverAge {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := removeSQLite(p); err != nil {
			o.logf("remove leftover scratch copy %s: %v", p, err)
			continue
		}
		o.logf("removed leftover scratch copy %s", p)
	}
}
