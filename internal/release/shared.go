package release

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// LinkShared makes each of paths (relative to the release) inside release
// id a symbolic link to the same path under sharedDir, so that what the app
// writes there (uploads, logs) outlives the release and is seen by the next
// one and by a rollback.
//
// For each path p, <sharedDir>/<p> is created as a directory if missing;
// when the release ships a file or directory at p and the shared one does
// not exist yet, the release's copy is moved there first, so the first
// deploy seeds it. Otherwise the release's own copy is removed. The link is
// relative when the two real paths allow it, so a data directory moved as
// a whole keeps working.
//
// LinkShared is idempotent. An absolute path or one with ".." is refused
// before anything is changed; a path that would reach outside the release
// through a symbolic link is refused when its turn comes.
func (m *Manager) LinkShared(id string, sharedDir string, paths []string) error {
	for _, p := range paths {
		if !filepath.IsLocal(p) || filepath.Clean(p) == "." {
			return fmt.Errorf("link shared paths into release %s: path %q escapes the release (give a path inside it)", id, p)
		}
	}
	root, err := os.OpenRoot(m.Dir(id))
	if err != nil {
		return fmt.Errorf("link shared paths into release %s: %w", id, err)
	}
	defer root.Close()
	if err := os.MkdirAll(sharedDir, 0o755); err != nil {
		return fmt.Errorf("link shared paths into release %s: %w", id, err)
	}
	realRel, err := filepath.EvalSymlinks(m.Dir(id))
	if err != nil {
		return fmt.Errorf("link shared paths into release %s: %w", id, err)
	}
	realShared, err := filepath.EvalSymlinks(sharedDir)
	if err != nil {
		return fmt.Errorf("link shared paths into release %s: %w", id, err)
	}
	for _, p := range paths {
		p = filepath.Clean(p)
		if err := linkOne(root, realRel, realShared, p); err != nil {
			return fmt.Errorf("link shared path %s into release %s: %w", p, id, err)
		}
	}
	return nil
}

// linkOne links release path p (inside root, whose real path is relDir) to
// sharedDir/p.
func linkOne(root *os.Root, relDir, sharedDir, p string) error {
	// The parent must be inside the release; os.Root refuses a path that
	// leaves it through a symbolic link.
	if err := root.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create its parent in the release (a symbolic link leading outside the release is refused): %w", err)
	}
	shared := filepath.Join(sharedDir, p)
	// The link is resolved from the real directory holding it, which
	// differs from the lexical one when a parent is a link inside the
	// release.
	linkDir, err := filepath.EvalSymlinks(filepath.Join(relDir, filepath.Dir(p)))
	if err != nil {
		return err
	}
	target := shared
	if rel, err := filepath.Rel(linkDir, shared); err == nil {
		target = rel
	}
	_, sharedErr := os.Lstat(shared)
	sharedExists := sharedErr == nil
	if sharedErr != nil && !errors.Is(sharedErr, fs.ErrNotExist) {
		return sharedErr
	}

	fi, err := root.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// nothing shipped at p
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		if link, err := root.Readlink(p); err == nil && link == target && sharedExists {
			return nil // already linked
		}
		if err := root.Remove(p); err != nil {
			return err
		}
	case !sharedExists && (fi.IsDir() || fi.Mode().IsRegular()):
		if err := os.MkdirAll(filepath.Dir(shared), 0o755); err != nil {
			return err
		}
		if err := move(filepath.Join(relDir, p), shared); err != nil {
			return fmt.Errorf("seed %s: %w", shared, err)
		}
		sharedExists = true
	default:
		if err := root.RemoveAll(p); err != nil {
			return err
		}
	}
	if !sharedExists {
		if err := os.MkdirAll(shared, 0o755); err != nil {
			return err
		}
	}
	// Root.Symlink does not follow or check the link's target: it is meant
	// to point outside the release.
	return root.Symlink(target, p)
}

// move renames src to dst, copying then removing src when they are on
// different file systems.
func move(src, dst string) error {
	err := os.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = copyTree(src, dst)
	} else {
		err = copyFile(src, dst, fi.Mode().Perm())
	}
	if err != nil {
		os.RemoveAll(dst) //nolint:errcheck // best effort; src is still whole
		return err
	}
	return os.RemoveAll(src)
}
