package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenCheckedFindsDamage: a file that is not a database, and one whose
// pages were cut short, are both reported as ErrCorrupt at open, not by a
// later write; a good file opens.
func TestOpenCheckedFindsDamage(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s, err := Open(good)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 200 {
		if err := s.PutRelease(ctx, Release{ID: string(rune('a'+i%26)) + time.Now().String(), Source: "x", Dir: "x", Status: ReleasePrepared,
			ConfigJSON: string(make([]byte, 2000))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := OpenChecked(good); err != nil {
		t.Fatalf("open a good database: %v", err)
	} else {
		s.Close()
	}

	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte("this is not a database, just text that is long enough to be read as a header by SQLite........"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenChecked(garbage); !errors.Is(err, ErrCorrupt) || !IsCorrupt(err) {
		t.Errorf("open a text file: got %v, want ErrCorrupt", err)
	}

	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.db")
	if err := os.WriteFile(cut, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenChecked(cut); !errors.Is(err, ErrCorrupt) {
		if s != nil {
			s.Close()
		}
		t.Errorf("open a database cut in half: got %v, want ErrCorrupt", err)
	}
}

// TestSetAside moves the database and its -wal and -shm files aside.
func TestSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	for _, ext := range []string{"", "-wal"} {
		if err := os.WriteFile(path+ext, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	aside, err := SetAside(path, time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := path + ".corrupt-20261205T130000"; aside != want {
		t.Errorf("moved to %q, want %q", aside, want)
	}
	for _, p := range []string{aside, aside + "-wal"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", path, err)
	}
}

// TestOpenMemoryCreatesNoFile: the database a daemon falls back to when
// it cannot open its file lives in memory only. Open used to create a
// file named ":memory:" in the working directory first, which under
// systemd as a non-root user ("/") fails, so the fallback failed too.
func TestOpenMemoryCreatesNoFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	st, err := OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("OpenMemory left %q in the working directory", e.Name())
	}
}
