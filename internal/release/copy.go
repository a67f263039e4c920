package release

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// copyTree copies the directory src to dst (which must not exist),
// preserving modes and symlinks. Special files (sockets, devices, pipes) are
// refused: a release is code and assets.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		default:
			return fmt.Errorf("%s: special file (%s) cannot be part of a release", path, info.Mode().Type())
		}
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFile(dst, in, perm)
}

func writeFile(dst string, r io.Reader, perm fs.FileMode) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	startWriteback(out)
	return out.Close()
}

// startWriteback starts writing f's data to disk without waiting for it,
// as each file is written, so that syncTree, which waits, finds little
// left to write. A file system
// without sync_file_range just leaves it all to syncTree.
func startWriteback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE) // best effort, see above
}

// syncfs is syncfs(2); tests replace it.
var syncfs = unix.Syncfs

// syncTree makes everything written under dir durable — file contents,
// new files and directories — with one syncfs(2) of the file system dir is
// on, rather than one fsync per file: a release can hold thousands of
// files. It may flush other dirty data of that file system too.
func syncTree(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("sync %s to disk: %w", dir, err)
	}
	return nil
}

// extractTarGz unpacks a gzip-compressed tarball into dst. Entries that
// would land outside dst are refused. When every entry sits under one
// top-level directory (as `git archive --prefix=app/` or `tar czf app.tgz
// app/` make), that directory becomes the release root.
func extractTarGz(src, dst string) error {
	strip, err := commonTopDir(src)
	if err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: not gzip: %w", src, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: read tar: %w", src, err)
		}
		name := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(h.Name)), "./")
		if strip != "" {
			name = strings.TrimPrefix(strings.TrimPrefix(name, strip), "/")
		}
		if name == "" || name == "." {
			continue
		}
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("%s: entry %q points outside the release", src, h.Name)
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr, mode); err != nil {
				return fmt.Errorf("%s: extract %s: %w", src, h.Name, err)
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
			// metadata only
		default:
			return fmt.Errorf("%s: entry %q has unsupported type %q", src, h.Name, h.Typeflag)
		}
	}
}

// commonTopDir returns the single top-level directory every entry of the
// tarball lives under, or "" if there is none.
func commonTopDir(src string) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("%s: not gzip: %w", src, err)
	}
	tr := tar.NewReader(gz)
	top := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return top, nil
		}
		if err != nil {
			return "", fmt.Errorf("%s: read tar: %w", src, err)
		}
		name := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(h.Name)), "./")
		if name == "." || name == "" {
			continue
		}
		first, _, nested := strings.Cut(name, "/")
		if !nested && h.Typeflag != tar.TypeDir {
			return "", nil // a file at the top level
		}
		if top == "" {
			top = first
		} else if top != first {
			return "", nil
		}
	}
}
