package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// SnapshotFile is the name, inside a release directory, of the file in
// which cutover up to this version recorded the release's configuration.
// A release directory is the app's working directory and often its
// document root, so a file there can be served to anyone: cutover now
// keeps the snapshot out of the app's tree (see [Manager.WriteSnapshot])
// and [Manager.MoveOldSnapshots] takes this file out of existing releases.
const SnapshotFile = ".cutover-app.json"

// snapshotPath is where release id's configuration snapshot is kept:
// <data_dir>/snapshots/<id>.json, outside the app's tree.
func (m *Manager) snapshotPath(id string) string {
	return filepath.Join(m.snaps, id+".json")
}

// WriteSnapshot records v as JSON as the configuration release id runs
// with (the [app] section with its environment snapshot), so that a
// daemon that lost its state database can run the release again as it
// was deployed. It holds the environment's values, secrets included, so
// it is kept outside the release directory, in <data_dir>/snapshots/
// (0700), mode 0600, written atomically.
func (m *Manager) WriteSnapshot(id string, v any) error {
	path := m.snapshotPath(id)
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write release snapshot %s: %w", path, err)
	}
	if err := os.MkdirAll(m.snaps, 0o700); err != nil {
		return fmt.Errorf("write release snapshot %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("write release snapshot %s: %w", path, err)
	}
	return nil
}

// ReadSnapshot decodes release id's configuration snapshot into v. If
// there is none in snapshots/, the file an older cutover left in the
// release directory is read. A release with neither (prepared before
// cutover recorded one) gives an error wrapping fs.ErrNotExist.
func (m *Manager) ReadSnapshot(id string, v any) error {
	path := m.snapshotPath(id)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		old := filepath.Join(m.Dir(id), SnapshotFile)
		if ob, oerr := os.ReadFile(old); oerr == nil {
			path, b, err = old, ob, nil
		}
	}
	if err != nil {
		return fmt.Errorf("read release snapshot: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read release snapshot %s: %w", path, err)
	}
	return nil
}

// MoveOldSnapshots takes the SnapshotFile an older cutover wrote out of
// every release directory, where the app could serve it: it is moved to
// snapshots/<id>.json (unless one is there already) and the old file is
// removed. It returns the releases whose file it took out. Call it at the
// daemon's start, before a rebuild reads the snapshots.
func (m *Manager) MoveOldSnapshots() ([]string, error) {
	ids, err := m.List()
	if err != nil {
		return nil, err
	}
	var moved []string
	var errs []error
	for _, id := range ids {
		old := filepath.Join(m.Dir(id), SnapshotFile)
		b, err := os.ReadFile(old)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", old, err))
			continue
		}
		if _, err := os.Stat(m.snapshotPath(id)); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(m.snaps, 0o700); err != nil {
				errs = append(errs, fmt.Errorf("move %s: %w", old, err))
				continue
			}
			if err := WriteFileAtomic(m.snapshotPath(id), b); err != nil {
				errs = append(errs, fmt.Errorf("move %s to %s: %w", old, m.snapshotPath(id), err))
				continue
			}
		}
		if err := os.Remove(old); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", old, err))
			continue
		}
		if err := syncDir(m.Dir(id)); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", old, err))
		}
		moved = append(moved, id)
	}
	return moved, errors.Join(errs...)
}

// removeOrphanSnapshots removes the snapshots of releases no longer on
// disk and not in keep.
func (m *Manager) removeOrphanSnapshots(keep map[string]bool) error {
	ents, err := os.ReadDir(m.snaps)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list release snapshots: %w", err)
	}
	ids, err := m.List()
	if err != nil {
		return err
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || keep[id] || slices.Contains(ids, id) {
			continue
		}
		if err := os.Remove(filepath.Join(m.snaps, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove release snapshot: %w", err)
		}
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
