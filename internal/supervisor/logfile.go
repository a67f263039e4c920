package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// openLog opens an instance's log file for appending, creating it and its
// directory. O_APPEND matters twice: writes of the instance and of earlier
// instances interleave instead of overwriting, and after a copy-truncate the
// instance writes at the new end instead of at its old offset.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	return f, nil
}

// CheckLog rotates the instance's log file now if it is larger than
// Spec.LogMaxSize: the file is copied to <log>.1 (replacing it) and
// truncated. The supervisor does this every Options.LogCheckInterval; call
// it to enforce the cap at once. It does nothing when LogMaxSize is 0.
func (i *Instance) CheckLog() error {
	if i.spec.LogMaxSize <= 0 || i.spec.LogPath == os.DevNull {
		return nil
	}
	i.logMu.Lock()
	defer i.logMu.Unlock()
	fi, err := os.Stat(i.spec.LogPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check log of instance %s: %w", i.spec.Instance, err)
	}
	if fi.Size() <= i.spec.LogMaxSize {
		return nil
	}
	if err := copyTruncate(i.spec.LogPath); err != nil {
		return fmt.Errorf("rotate log of instance %s: %w", i.spec.Instance, err)
	}
	i.log.Info("log rotated", "path", i.spec.LogPath, "size", fi.Size())
	return nil
}

// copyTruncate copies path to path+".1" through a temporary file renamed
// into place, then truncates path to zero. The file is not renamed because
// the instance holds it open and would go on writing into the old one.
func copyTruncate(path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close() // read-only
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".1.*")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path+".1")
	}
	if err != nil {
		_ = os.Remove(tmp.Name()) // best effort; the error below matters more
		return err
	}
	return os.Truncate(path, 0)
}

// watchLog calls CheckLog every interval until stop is closed.
func (i *Instance) watchLog(interval time.Duration, stop <-chan struct{}) {
	if i.spec.LogMaxSize <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := i.CheckLog(); err != nil {
				i.log.Warn("check log size", "err", err)
			}
		}
	}
}
