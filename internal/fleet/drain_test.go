package fleet

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDrainFileOwnerOnly: what the daemon writes under the data dir is
// owner-only, as datadir.Prepare keeps it (0700 directories, 0600 files);
// the drain files were 0755/0644, so every start tightened them again and
// warned that they could hold secrets.
func TestDrainFileOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drain", "r-1")
	if err := writeDrainFile(path, "began=now\n"); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %#o, want %#o", p, got, want)
		}
	}
}
