package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// prepareDir makes a release from a directory holding files.
func prepareDir(t *testing.T, m *Manager, files map[string]string) string {
	t.Helper()
	src := t.TempDir()
	for name, body := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	id, err := m.Prepare(src)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func assertLink(t *testing.T, m *Manager, id, p, shared string) {
	t.Helper()
	path := filepath.Join(m.Dir(id), p)
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s is %v, want a symbolic link", path, fi.Mode())
	}
	got, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(filepath.Join(shared, p))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s resolves to %q, want %q", path, got, want)
	}
}

func TestLinkSharedSeedsAndSurvives(t *testing.T) {
	m := newManager(t)
	shared := filepath.Join(filepath.Dir(m.dir), "shared")
	paths := []string{"uploads", "log", "config/database.yml"}

	r1 := prepareDir(t, m, map[string]string{
		"uploads/default.png": "v1 default",
		"config/database.yml": "db: v1",
	})
	if err := m.LinkShared(r1, shared, paths); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		assertLink(t, m, r1, p, shared)
	}
	// Seeded from the first release.
	if got, want := readFile(t, filepath.Join(shared, "uploads", "default.png")), "v1 default"; got != want {
		t.Errorf("seeded uploads/default.png = %q, want %q", got, want)
	}
	if got, want := readFile(t, filepath.Join(shared, "config", "database.yml")), "db: v1"; got != want {
		t.Errorf("seeded config/database.yml = %q, want %q", got, want)
	}
	if fi, err := os.Stat(filepath.Join(shared, "log")); err != nil || !fi.IsDir() {
		t.Errorf("shared/log = %v, %v; want a directory", fi, err)
	}
	link, err := os.Readlink(filepath.Join(m.Dir(r1), "uploads"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.IsAbs(link) {
		t.Errorf("link target %q is absolute, want relative within the data directory", link)
	}

	// Idempotent.
	if err := m.LinkShared(r1, shared, paths); err != nil {
		t.Fatalf("second LinkShared: %v", err)
	}
	if again, _ := os.Readlink(filepath.Join(m.Dir(r1), "uploads")); again != link {
		t.Errorf("link changed on a second call: %q, want %q", again, link)
	}

	// The app writes through the link.
	if err := os.WriteFile(filepath.Join(m.Dir(r1), "uploads", "user.png"), []byte("from v1"), 0o644); err != nil {
		t.Fatal(err)
	}

	// The next release ships its own uploads/ and config: the shared ones win.
	r2 := prepareDir(t, m, map[string]string{
		"uploads/default.png": "v2 default",
		"config/database.yml": "db: v2",
	})
	if err := m.LinkShared(r2, shared, paths); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		assertLink(t, m, r2, p, shared)
	}
	if got, want := readFile(t, filepath.Join(m.Dir(r2), "uploads", "user.png")), "from v1"; got != want {
		t.Errorf("v2 sees uploads/user.png = %q, want %q", got, want)
	}
	if got, want := readFile(t, filepath.Join(m.Dir(r2), "uploads", "default.png")), "v1 default"; got != want {
		t.Errorf("v2 sees uploads/default.png = %q, want %q (shared content is not overwritten)", got, want)
	}
	if got, want := readFile(t, filepath.Join(m.Dir(r2), "config", "database.yml")), "db: v1"; got != want {
		t.Errorf("v2 sees config/database.yml = %q, want %q", got, want)
	}

	// Removing a release removes its links, not the shared files.
	if err := m.Remove(r1); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(shared, "uploads", "user.png")), "from v1"; got != want {
		t.Errorf("after removing v1, shared uploads/user.png = %q, want %q", got, want)
	}
}

func TestLinkSharedReplacesStaleLink(t *testing.T) {
	m := newManager(t)
	shared := filepath.Join(filepath.Dir(m.dir), "shared")
	id := prepareDir(t, m, map[string]string{"README": "x"})
	if err := os.Symlink("/nowhere", filepath.Join(m.Dir(id), "uploads")); err != nil {
		t.Fatal(err)
	}
	if err := m.LinkShared(id, shared, []string{"uploads"}); err != nil {
		t.Fatal(err)
	}
	assertLink(t, m, id, "uploads", shared)
}

func TestLinkSharedRefusesEscapes(t *testing.T) {
	m := newManager(t)
	shared := filepath.Join(filepath.Dir(m.dir), "shared")
	id := prepareDir(t, m, map[string]string{"uploads/a": "a"})
	for _, p := range []string{"../outside", "/etc", "uploads/../../x", ".", ""} {
		err := m.LinkShared(id, shared, []string{"uploads", p})
		if err == nil || !strings.Contains(err.Error(), "escapes the release") {
			t.Errorf("LinkShared(%q) = %v, want an 'escapes the release' error", p, err)
		}
	}
	// Refused before anything changed.
	if _, err := os.Lstat(shared); !os.IsNotExist(err) {
		t.Errorf("shared dir exists after refused calls: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(m.Dir(id), "uploads")); err != nil || !fi.IsDir() {
		t.Errorf("release uploads/ = %v, %v; want the untouched directory", fi, err)
	}

	// Through a symbolic link the release ships.
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(m.Dir(id), "public")); err != nil {
		t.Fatal(err)
	}
	if err := m.LinkShared(id, shared, []string{"public/uploads"}); err == nil {
		t.Errorf("LinkShared(public/uploads) through a link to %s succeeded, want an error", outside)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("LinkShared wrote outside the release: %v", ents)
	}
}
