package release

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestSnapshotOutsideReleaseAndPruned: a release's configuration snapshot
// is kept in snapshots/<id>.json (0600, in a 0700 directory), not in the
// release directory, reads back, and goes with the release when it is
// pruned or removed.
func TestSnapshotOutsideReleaseAndPruned(t *testing.T) {
	m := newManager(t)
	src := t.TempDir()
	var ids []string
	for i := 0; i < 3; i++ {
		id, err := m.Prepare(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.WriteSnapshot(id, map[string]string{"API_KEY": "secret-" + id}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := os.Stat(filepath.Join(m.Dir(ids[0]), SnapshotFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s in the release directory: got %v, want none", SnapshotFile, err)
	}
	if fi, err := os.Stat(m.snaps); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("snapshots directory: got %v (%v), want mode 0700", fi, err)
	}
	if fi, err := os.Stat(m.snapshotPath(ids[0])); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot: got %v (%v), want mode 0600", fi, err)
	}
	var got map[string]string
	if err := m.ReadSnapshot(ids[1], &got); err != nil || got["API_KEY"] != "secret-"+ids[1] {
		t.Errorf("ReadSnapshot(%s): got %v (%v)", ids[1], got, err)
	}

	if _, err := m.Prune(2, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ids[1]); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:2] {
		if _, err := os.Stat(m.snapshotPath(id)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("snapshot of removed release %s: got %v, want it removed", id, err)
		}
	}
	if _, err := os.Stat(m.snapshotPath(ids[2])); err != nil {
		t.Errorf("snapshot of kept release %s: %v", ids[2], err)
	}
	ents, _ := os.ReadDir(m.snaps)
	if len(ents) != 1 {
		t.Errorf("snapshots/ after prune: got %d entries, want 1 (no temporary files)", len(ents))
	}
}
