// Package release owns release directories: it turns a source (a directory,
// a .tar.gz, or a git ref that is checked out, tested and built) into an
// immutable releases/<id>/ directory with its metadata, links the shared
// paths that outlive releases into it, swaps the `current` symlink
// atomically, and prunes old releases.
//
// A release directory appears only complete: it is assembled under a
// temporary name inside releases/ and renamed into place, so a crash never
// leaves a half-copied release that looks whole.
package release

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Manager manages the releases under one data directory.
type Manager struct {
	dir     string           // <data_dir>/releases
	logs    string           // <data_dir>/logs: logs/<release>/<instance>.log
	snaps   string           // <data_dir>/snapshots: snapshots/<release>.json
	current string           // <data_dir>/current
	now     func() time.Time // injectable clock for ids
}

// NewManager returns a Manager for dataDir, creating releases/ if needed.
func NewManager(dataDir string) (*Manager, error) {
	m := &Manager{
		dir:     filepath.Join(dataDir, "releases"),
		logs:    filepath.Join(dataDir, "logs"),
		snaps:   filepath.Join(dataDir, "snapshots"),
		current: filepath.Join(dataDir, "current"),
		now:     time.Now,
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create releases directory: %w", err)
	}
	return m, nil
}

// Dir returns the directory of release id.
func (m *Manager) Dir(id string) string { return filepath.Join(m.dir, id) }

// Compiled when first used, not at start: every command, the lightest
// included, would pay for it otherwise.
var unsafeLabel = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^A-Za-z0-9._-]+`) })

// Label derives the human part of a release id from a source path:
// "/src/app-v2.tar.gz" → "app-v2".
func Label(source string) string {
	base := filepath.Base(filepath.Clean(source))
	for _, ext := range []string{".tar.gz", ".tgz"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.Trim(unsafeLabel().ReplaceAllString(base, "-"), "-.")
	if len(base) > 40 {
		base = base[:40]
	}
	if base == "" {
		base = "release"
	}
	return base
}

// NewID returns a fresh release id that sorts by time and carries label,
// e.g. "20261122T093500-v2". It never returns the id of an existing release.
func (m *Manager) NewID(label string) string {
	base := m.now().UTC().Format("20060102T150405") + "-" + label
	id := base
	for n := 2; ; n++ {
		if _, err := os.Lstat(m.Dir(id)); errors.Is(err, os.ErrNotExist) {
			return id
		}
		id = fmt.Sprintf("%s.%d", base, n)
	}
}

// Prepare copies source (a directory, or a .tar.gz / .tgz file) into a new
// release directory and returns its id. On error nothing is left behind.
func (m *Manager) Prepare(source string) (string, error) {
	return m.prepare(source, nil)
}

// prepare is Prepare with a hook that may add to the release before it is
// renamed into place.
func (m *Manager) prepare(source string, finish func(tmp string) error) (string, error) {
	fi, err := os.Stat(source)
	if err != nil {
		return "", fmt.Errorf("release source %s: %w", source, err)
	}
	id := m.NewID(Label(source))
	tmp := filepath.Join(m.dir, ".tmp-"+id+"-"+randHex(4))
	switch {
	case fi.IsDir():
		err = copyTree(source, tmp)
	case isTarball(source):
		err = extractTarGz(source, tmp)
	default:
		return "", fmt.Errorf("release source %s: not a directory nor a .tar.gz/.tgz file", source)
	}
	if err == nil && finish != nil {
		err = finish(tmp)
	}
	// On disk before it has its name: a release that is recorded, or
	// made current, never turns out empty after a power loss.
	if err == nil {
		err = syncTree(tmp)
	}
	if err != nil {
		os.RemoveAll(tmp) //nolint:errcheck // best effort; the error that matters is err
		return "", fmt.Errorf("prepare release from %s: %w", source, err)
	}
	if err := os.Rename(tmp, m.Dir(id)); err != nil {
		os.RemoveAll(tmp) //nolint:errcheck // best effort
		return "", fmt.Errorf("prepare release %s: %w", id, err)
	}
	if err := syncDir(m.dir); err != nil {
		os.RemoveAll(m.Dir(id)) //nolint:errcheck // best effort
		return "", fmt.Errorf("prepare release %s: %w", id, err)
	}
	return id, nil
}

func isTarball(source string) bool {
	return strings.HasSuffix(source, ".tar.gz") || strings.HasSuffix(source, ".tgz")
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// SetCurrent points the `current` symlink at release id, atomically: a new
// link is created beside it and renamed over the old one.
func (m *Manager) SetCurrent(id string) error {
	if _, err := os.Stat(m.Dir(id)); err != nil {
		return fmt.Errorf("set current to %s: %w", id, err)
	}
	tmp := m.current + ".tmp-" + randHex(4)
	if err := os.Symlink(filepath.Join("releases", id), tmp); err != nil {
		return fmt.Errorf("set current to %s: %w", id, err)
	}
	if err := os.Rename(tmp, m.current); err != nil {
		os.Remove(tmp) //nolint:errcheck // best effort
		return fmt.Errorf("set current to %s: %w", id, err)
	}
	return syncDir(filepath.Dir(m.current))
}

// Current returns the release id `current` points at, or "" if there is no
// link yet.
func (m *Manager) Current() (string, error) {
	target, err := os.Readlink(m.current)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read current: %w", err)
	}
	return filepath.Base(target), nil
}

// List returns the ids of the release directories on disk, oldest first.
func (m *Manager) List() ([]string, error) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Remove deletes the directory of release id, its configuration snapshot
// (snapshots/<id>.json) and its instances' logs (logs/<id>/).
func (m *Manager) Remove(id string) error {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return fmt.Errorf("remove release %q: not a release id", id)
	}
	if err := os.RemoveAll(m.Dir(id)); err != nil {
		return fmt.Errorf("remove release %s: %w", id, err)
	}
	if err := os.Remove(m.snapshotPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the configuration snapshot of release %s: %w", id, err)
	}
	if err := os.RemoveAll(filepath.Join(m.logs, id)); err != nil {
		return fmt.Errorf("remove the logs of release %s: %w", id, err)
	}
	return nil
}

// Prune removes releases, with their logs, so that at most keep remain,
// never removing one listed in protect (protected ones count towards keep). The releases
// listed in first — those that never went live, which no rollback can
// return to — go before any other, oldest first; then the oldest of the
// rest. So keep is spent on releases that went live, and one that never
// did stays only while there is room left. The logs of a release no
// longer on disk and not in protect are removed too. It returns the ids
// removed.
func (m *Manager) Prune(keep int, first []string, protect ...string) ([]string, error) {
	ids, err := m.List()
	if err != nil {
		return nil, err
	}
	keepSet := map[string]bool{}
	for _, p := range protect {
		keepSet[p] = true
	}
	firstSet := map[string]bool{}
	for _, f := range first {
		firstSet[f] = true
	}
	// ids is oldest first: the candidates are the expendable ones, oldest
	// first, then the others, oldest first.
	var order []string
	for _, pass := range []bool{true, false} {
		for _, id := range ids {
			if firstSet[id] == pass && !keepSet[id] {
				order = append(order, id)
			}
		}
	}
	excess := len(ids) - keep
	var removed []string
	for _, id := range order {
		if excess <= 0 {
			break
		}
		if err := m.Remove(id); err != nil {
			return removed, err
		}
		removed = append(removed, id)
		excess--
	}
	// Leftovers of interrupted prepares are never a release.
	ents, _ := os.ReadDir(m.dir) //nolint:errcheck // listing failed above would have returned
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			os.RemoveAll(filepath.Join(m.dir, e.Name())) //nolint:errcheck // best effort clean-up
		}
	}
	// Snapshots and logs of releases gone earlier (by an older cutover,
	// which left the logs; by a crash between two removals).
	if err := m.removeOrphanSnapshots(keepSet); err != nil {
		return removed, err
	}
	if err := m.removeOrphanLogs(keepSet); err != nil {
		return removed, err
	}
	return removed, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
