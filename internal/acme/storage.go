package acme

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/caddyserver/certmagic"
)

// fileStorage is certmagic's FileStorage with each write made durable.
// FileStorage already writes a file atomically (a temporary file, fsync,
// rename over the old one), but does not fsync the directory after the
// rename, so a power cut can bring back the old certificate, or no file at
// all, beside the account or metadata written with it. Store syncs the
// directory too, as cutover's other state files do.
type fileStorage struct {
	*certmagic.FileStorage
}

// Store writes value under key atomically and durably.
func (s fileStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := s.FileStorage.Store(ctx, key, value); err != nil {
		return err
	}
	return syncDir(filepath.Dir(s.Filename(key)))
}

// syncDir fsyncs a directory, making the renames in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close() // read-only: its Close reports nothing worth keeping
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
