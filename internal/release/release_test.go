package release

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newManager(t *testing.T) *Manager {
	t.Helper()
	m, err := NewManager(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 11, 22, 9, 35, 0, 0, time.UTC)
	m.now = func() time.Time { tick = tick.Add(time.Second); return tick }
	return m
}

func writeTarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	f.Close()
}

func TestPrepareDirectory(t *testing.T) {
	m := newManager(t)
	src := filepath.Join(t.TempDir(), "v2")
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "bin", "run"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("bin/run", filepath.Join(src, "start"))
	id, err := m.Prepare(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := "20261122T093501-v2"; id != want {
		t.Errorf("id = %q, want %q", id, want)
	}
	fi, err := os.Stat(filepath.Join(m.Dir(id), "bin", "run"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/run = %v, %v; want mode 0755", fi, err)
	}
	if link, _ := os.Readlink(filepath.Join(m.Dir(id), "start")); link != "bin/run" {
		t.Errorf("symlink = %q, want bin/run", link)
	}
}

func TestPrepareTarGzStripsTopDir(t *testing.T) {
	m := newManager(t)
	tgz := filepath.Join(t.TempDir(), "app-v3.tar.gz")
	writeTarGz(t, tgz, map[string]string{"app/VERSION": "v3\n", "app/static/x.css": "body{}"})
	id, err := m.Prepare(tgz)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(id, "-app-v3") {
		t.Errorf("id = %q, want suffix -app-v3", id)
	}
	b, err := os.ReadFile(filepath.Join(m.Dir(id), "VERSION"))
	if err != nil || string(b) != "v3\n" {
		t.Errorf("VERSION = %q, %v", b, err)
	}
}

func TestPrepareRefusesTraversal(t *testing.T) {
	m := newManager(t)
	tgz := filepath.Join(t.TempDir(), "evil.tgz")
	writeTarGz(t, tgz, map[string]string{"../../etc/evil": "x", "ok": "y"})
	if _, err := m.Prepare(tgz); err == nil || !strings.Contains(err.Error(), "outside the release") {
		t.Fatalf("Prepare(evil) = %v; want an 'outside the release' error", err)
	}
	ids, _ := m.List()
	if len(ids) != 0 {
		t.Errorf("a failed prepare left releases %v", ids)
	}
}

func TestPrepareMissingSource(t *testing.T) {
	m := newManager(t)
	_, err := m.Prepare("/does/not/exist")
	if err == nil || !strings.Contains(err.Error(), "/does/not/exist") {
		t.Fatalf("Prepare(missing) = %v; want an error naming the path", err)
	}
}

func TestSetCurrentAndPrune(t *testing.T) {
	m := newManager(t)
	src := t.TempDir()
	var ids []string
	for i := 0; i < 5; i++ {
		id, err := m.Prepare(src)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := m.SetCurrent(ids[0]); err != nil {
		t.Fatal(err)
	}
	if cur, _ := m.Current(); cur != ids[0] {
		t.Errorf("Current() = %q, want %q", cur, ids[0])
	}
	removed, err := m.Prune(2, nil, ids[0], ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(removed, ","), strings.Join(ids[2:5], ","); got != want {
		t.Errorf("pruned %s, want %s (protected ones kept)", got, want)
	}
	left, _ := m.List()
	if len(left) != 2 {
		t.Errorf("left %v", left)
	}
}

// A release is synced to disk before it gets its name, and a failed sync
// leaves nothing behind.
func TestPrepareSyncsBeforeRename(t *testing.T) {
	m := newManager(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "app"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	var synced []string
	fail := error(nil)
	syncfs = func(fd int) error {
		dir, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil {
			t.Fatal(err)
		}
		synced = append(synced, dir)
		if _, err := os.Stat(filepath.Join(dir, "app")); err != nil {
			t.Errorf("synced %s before the release's files were in it: %v", dir, err)
		}
		return fail
	}
	t.Cleanup(func() { syncfs = unix.Syncfs })

	id, err := m.Prepare(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || !strings.HasPrefix(filepath.Base(synced[0]), ".tmp-") {
		t.Errorf("synced %q, want the release's temporary directory, once", synced)
	}
	if _, err := os.Stat(m.Dir(id)); err != nil {
		t.Errorf("release %s after a good sync: %v", id, err)
	}

	fail = syscall.EIO
	if _, err := m.Prepare(src); err == nil || !strings.Contains(err.Error(), "to disk") || !errors.Is(err, syscall.EIO) {
		t.Errorf("Prepare with a failing sync: got %v, want the sync's error", err)
	}
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != id {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("releases after a failed sync: %v, want only %s", names, id)
	}
}
