package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenStateDamaged: a state.db that is not a database no longer stops
// the daemon: it is moved aside (kept, named in the note) and a new one is
// created.
func TestOpenStateDamaged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("garbage ", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	store, prob, err := openState(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open a damaged state.db: %v", err)
	}
	defer store.Close()
	if prob.degraded != "" {
		t.Errorf("degraded: %q, want deploys accepted on the new file", prob.degraded)
	}
	if !strings.Contains(prob.note, path+".corrupt-") || !strings.Contains(prob.note, "not a database") {
		t.Errorf("note %q does not name the file moved aside and why", prob.note)
	}
	if err := store.Set(context.Background(), "k", "v"); err != nil {
		t.Errorf("write to the new state.db: %v", err)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Errorf("files moved aside: %q, want one", matches)
	}
}

// TestOpenStateUnopenable: a state.db that cannot be opened at all (here a
// directory in its place) gives a daemon on a database in memory, with
// deploys refused and the reason naming the file.
func TestOpenStateUnopenable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	store, prob, err := openState(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer store.Close()
	if !strings.Contains(prob.degraded, path) || !strings.Contains(prob.degraded, "cutover upgrade") {
		t.Errorf("degraded %q does not name the file and what to do", prob.degraded)
	}
	if err := store.Set(context.Background(), "k", "v"); err != nil {
		t.Errorf("write to the database in memory: %v", err)
	}
}
