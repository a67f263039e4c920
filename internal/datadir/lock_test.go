package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestLockHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file description: a second open in
	// the same process conflicts as another process's would.
	_, err = Lock(path)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != strconv.Itoa(os.Getpid()) {
		t.Fatalf("second Lock: got %v, want a *HeldError naming pid %d", err, os.Getpid())
	}
	unlock()
	unlock2, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode: %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func TestListenUnixOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.sock")
	if err := os.WriteFile(path, nil, 0o644); err != nil { // a stale one
		t.Fatal(err)
	}
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
}
