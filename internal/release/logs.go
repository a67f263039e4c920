package release

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// removeOrphanLogs removes logs/<x>/ for every x that has no release
// directory and is not in keep.
func (m *Manager) removeOrphanLogs(keep map[string]bool) error {
	ents, err := os.ReadDir(m.logs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list logs: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || keep[e.Name()] {
			continue
		}
		if _, err := os.Lstat(m.Dir(e.Name())); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(m.logs, e.Name())); err != nil {
			return fmt.Errorf("remove the logs of pruned release %s: %w", e.Name(), err)
		}
	}
	return nil
}

// LogTrim is what TrimLogs did.
type LogTrim struct {
	// Removed lists the files removed, oldest first; RemovedBytes is
	// their size.
	Removed      []string
	RemovedBytes int64
	// Total is the size of logs/ afterwards, in bytes. It is above the
	// cap only when the open files alone are.
	Total int64
}

// TrimLogs holds logs/ to max bytes in all: while it holds more, it
// removes the file least recently written, never one listed in open (the
// log files that running instances' log writers write to: removing one
// would free nothing while the writer holds it, and lose what it writes
// next). Rotated files (.1) and the logs of stopped instances go, oldest
// first. max <= 0 means no cap.
func (m *Manager) TrimLogs(max int64, open map[string]bool) (LogTrim, error) {
	type file struct {
		path string
		size int64
		mod  time.Time
	}
	var files []file
	var t LogTrim
	err := filepath.WalkDir(m.logs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile: a prune, or the root not made yet
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		t.Total += fi.Size()
		if !open[p] {
			files = append(files, file{p, fi.Size(), fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return t, fmt.Errorf("trim logs: %w", err)
	}
	if max <= 0 || t.Total <= max {
		return t, nil
	}
	slices.SortFunc(files, func(a, b file) int { return cmp.Compare(a.mod.UnixNano(), b.mod.UnixNano()) })
	for _, f := range files {
		if t.Total <= max {
			break
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return t, fmt.Errorf("trim logs: %w", err)
		}
		t.Removed = append(t.Removed, f.path)
		t.RemovedBytes += f.size
		t.Total -= f.size
	}
	return t, nil
}
