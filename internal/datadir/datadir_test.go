package datadir

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestPrepareCreatesOwnerOnlyDir(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "data")
	if err := Prepare(dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("data dir mode = %#o, want 0700", got)
	}
}

// A data dir made by an older cutover (0755 directories, 0644 files) is
// tightened at start, and each change is logged; the app's code and data
// keep their modes.
func TestPrepareTightensAnOldDataDir(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	mk := func(rel string, perm fs.FileMode) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tight := []string{
		mk("state.db", 0o644), mk("state.db-wal", 0o644), mk("state.db-shm", 0o644),
		mk("daemon.lock", 0o644), mk("logs/r1/r1-1.log", 0o644), mk("logs/r1/r1-1.log.1", 0o664),
		mk("releases/r1/.cutover-release.json", 0o644),
		filepath.Join(dir, "logs"), filepath.Join(dir, "logs/r1"), filepath.Join(dir, "releases"),
		filepath.Join(dir, "shared"), dir,
	}
	app := []string{mk("releases/r1/server.js", 0o644), mk("releases/r1/bin/run", 0o755), mk("shared/uploads/a.png", 0o644),
		filepath.Join(dir, "releases/r1"), filepath.Join(dir, "shared/uploads")}
	exec := mk("releases/r1/bin/run", 0o755)
	if err := os.Symlink(exec, filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Prepare(dir, slog.New(slog.NewTextHandler(&buf, nil))); err != nil {
		t.Fatal(err)
	}
	for _, p := range tight {
		if got := mode(t, p); got&0o077 != 0 {
			t.Errorf("%s mode = %#o after Prepare, want no permission for group and others", p, got)
		}
		if !strings.Contains(buf.String(), "path="+p+" ") {
			t.Errorf("the change of %s was not logged; log:\n%s", p, buf.String())
		}
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("data dir mode = %#o, want 0700", got)
	}
	for _, p := range app {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o044 != 0o044 {
			t.Errorf("%s mode = %#o: the app's own file was changed", p, fi.Mode().Perm())
		}
	}

	// A second start has nothing to change and says nothing.
	buf.Reset()
	if err := Prepare(dir, slog.New(slog.NewTextHandler(&buf, nil))); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("second Prepare logged:\n%s", buf.String())
	}
}

func TestDigestKeyIsCreatedOnceOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	k1, err := DigestKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("key is %d bytes, want 32", len(k1))
	}
	if got := mode(t, filepath.Join(dir, KeyFile)); got != 0o600 {
		t.Errorf("key mode = %#o, want 0600", got)
	}
	k2, err := DigestKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Error("a second DigestKey returned another key")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, KeyFile+".tmp-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// Thousands of old log files give a bounded log: maxLogged lines, then a
// count.
func TestPrepareLogsABoundedNumberOfChanges(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs", "r1"), 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range maxLogged + 20 {
		p := filepath.Join(dir, "logs", "r1", fmt.Sprintf("r1-%d.log", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Prepare(dir, slog.New(slog.NewTextHandler(&buf, nil))); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != maxLogged+1 || !strings.Contains(lines[maxLogged], fmt.Sprintf("entries=%d", maxLogged+20)) {
		t.Errorf("got %d log lines, the last %q; want %d and a count of %d", len(lines), lines[len(lines)-1], maxLogged+1, maxLogged+20)
	}
}
