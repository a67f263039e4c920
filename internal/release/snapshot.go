package release

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// SnapshotFile is the name, inside a release directory, of the file that
// records the configuration the release runs with (the [app] section with
// its environment snapshot), so that a daemon that lost its state database
// can run the release again as it was deployed. It holds the environment's
// values, secrets included, so it is readable by its owner only.
const SnapshotFile = ".cutover-app.json"

// WriteSnapshot writes v as JSON to dir's SnapshotFile atomically (a
// temporary file, synced, renamed over the old one, the directory synced),
// with mode 0600.
func WriteSnapshot(dir string, v any) error {
	path := filepath.Join(dir, SnapshotFile)
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write release snapshot %s: %w", path, err)
	}
	tmp := path + ".tmp-" + randHex(4)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.Write(append(b, '\n'))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp) //nolint:errcheck // best effort; err is what matters
		return fmt.Errorf("write release snapshot %s: %w", path, err)
	}
	return nil
}

// ReadSnapshot decodes dir's SnapshotFile into v. A release prepared
// before cutover wrote one gives an error wrapping fs.ErrNotExist.
func ReadSnapshot(dir string, v any) error {
	path := filepath.Join(dir, SnapshotFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read release snapshot: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read release snapshot %s: %w", path, err)
	}
	return nil
}

// RemoveTemporary removes what a prepare killed half-way left in
// releases/ (directories and files named .tmp-*) and returns their names.
// Call it only when no prepare runs: at the daemon's start.
func (m *Manager) RemoveTemporary() ([]string, error) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	var gone []string
	for _, e := range ents {
		if len(e.Name()) < 5 || e.Name()[:5] != ".tmp-" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(m.dir, e.Name())); err != nil {
			return gone, fmt.Errorf("remove %s: %w", filepath.Join(m.dir, e.Name()), err)
		}
		gone = append(gone, e.Name())
	}
	return gone, nil
}
