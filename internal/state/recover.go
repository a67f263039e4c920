package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// SQLite's primary result codes for a file that is not a database, or one
// whose pages do not hold together.
const (
	sqliteCorrupt  = 11 // SQLITE_CORRUPT: "database disk image is malformed"
	sqliteNotADB   = 26 // SQLITE_NOTADB: "file is not a database"
	corruptSuffix  = ".corrupt-"
	corruptStamp   = "20060102T150405"
	quickCheckText = `PRAGMA quick_check(1)`
)

// ErrCorrupt is wrapped by OpenChecked's error when the database file is
// not a database or is damaged.
var ErrCorrupt = errors.New("the state database is damaged")

// IsCorrupt reports whether err is SQLite saying the file is not a
// database or its image is malformed.
func IsCorrupt(err error) bool {
	if errors.Is(err, ErrCorrupt) {
		return true
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff { // extended codes keep the primary in the low byte
		case sqliteCorrupt, sqliteNotADB:
			return true
		}
	}
	return false
}

// OpenChecked is Open followed by SQLite's quick integrity check, so that
// a damaged file is found at start rather than by the first write that
// touches the broken page. The error wraps ErrCorrupt when the file is
// damaged.
func OpenChecked(path string) (*Store, error) {
	s, err := Open(path)
	if err != nil {
		if IsCorrupt(err) {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, err
	}
	var res string
	if err := s.db.QueryRowContext(context.Background(), quickCheckText).Scan(&res); err != nil {
		s.Close()
		if IsCorrupt(err) {
			return nil, fmt.Errorf("open state %s: %w: %w", path, ErrCorrupt, err)
		}
		return nil, fmt.Errorf("open state %s: check: %w", path, err)
	}
	if res != "ok" {
		s.Close()
		return nil, fmt.Errorf("open state %s: %w: integrity check: %s", path, ErrCorrupt, res)
	}
	return s, nil
}

// SetAside renames a damaged database (and its -wal and -shm files, when
// present) to <path>.corrupt-<time>[-wal|-shm], out of the way of a new
// one but kept for whoever wants to look into it, and returns the new
// name of the database file.
func SetAside(path string, now time.Time) (string, error) {
	aside := path + corruptSuffix + now.UTC().Format(corruptStamp)
	for _, ext := range []string{"", "-wal", "-shm"} {
		err := os.Rename(path+ext, aside+ext)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("move the damaged state database %s aside: %w", path+ext, err)
		}
	}
	return aside, nil
}

// OpenMemory opens an empty state database that lives in memory only: what
// a daemon runs on when it cannot open its file, so that it still serves
// and supervises (nothing it records then survives it).
func OpenMemory() (*Store, error) {
	return Open(memoryPath)
}

// memoryPath is SQLite's name for a database in memory: Open creates no
// file for it (a file named ":memory:" in the working directory, which is
// "/" under systemd, would fail for a non-root daemon or litter it).
const memoryPath = ":memory:"
