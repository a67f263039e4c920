// Package datadir owns who may read the daemon's data directory. The
// directory holds secrets in plain text — state.db records every release's
// configuration and environment snapshot ([app.env] and env_file values),
// so that a rollback restores them, and so does snapshots/<id>.json, kept
// outside the release directories — and the apps' logs, which may print
// secrets too. So the directory is 0700 and everything cutover writes in it
// is 0600 (directories 0700), from the moment it is created; a data
// directory made by an older cutover with looser modes is tightened at
// start ([Prepare]).
//
// Modes are explicit at each creation rather than set through the umask:
// the umask is per process and the app's instances, hooks and build
// commands inherit the daemon's, so a umask of 077 would also change the
// modes of what the app itself creates (its uploads in shared/, say).
//
// The release directories (releases/<id>/) are the app's code, copied with
// the modes they had at the source: they stay as they are, and are out of
// other users' reach because the data directory is 0700. Their metadata
// file holds only keyed digests ([DigestKey]) but is 0600 all the same.
package datadir

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// DirMode is the mode of the data directory and of every directory
// cutover creates in it, apart from the releases' own content.
const DirMode fs.FileMode = 0o700

// FileMode is the mode of every file cutover creates in the data
// directory: the state database and its -wal and -shm, the digest key,
// the lock, the apps' log files, the releases' metadata.
const FileMode fs.FileMode = 0o600

// KeyFile is the name, in the data directory, of the key of the digests
// that release metadata records (see DigestKey).
const KeyFile = "digest.key"

// keyLen is the size of the digest key in bytes.
const keyLen = 32

// Prepare creates the data directory dir with DirMode if it does not
// exist, and tightens what an older cutover made with looser modes: dir
// itself, each file and directory at its top level, everything under
// logs/, releases/ and each release's metadata file lose every
// permission of group and others. Each change is logged. The content of
// the releases (the app's code) and of shared/ (the app's data) is left as
// it is, and symbolic links are never followed.
func Prepare(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	t := tightener{log: log}
	t.fix(dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", dir, err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch e.Name() {
		case "logs", "snapshots":
			t.tree(p)
		case "releases":
			t.releases(p)
		default:
			// shared/ is the app's; its top directory is cutover's.
			t.fix(p)
		}
	}
	if t.changed > maxLogged && log != nil {
		log.Warn("tightened the modes of more data dir entries than were logged one by one", "dir", dir,
			"entries", t.changed, "logged", maxLogged)
	}
	if len(t.errs) > 0 {
		return fmt.Errorf("tighten the modes of data dir %s: %w", dir, errors.Join(t.errs...))
	}
	return nil
}

// maxLogged is how many changes Prepare logs one by one; a data dir with
// thousands of old log files gets a count for the rest.
const maxLogged = 50

// tightener removes group and other permissions and logs what it changed.
type tightener struct {
	log     *slog.Logger
	errs    []error
	changed int
}

// fix clears the group and other bits of path, unless it is a symbolic
// link (chmod would act on its target).
func (t *tightener) fix(path string) {
	fi, err := os.Lstat(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.errs = append(t.errs, err)
		}
		return
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return
	}
	old := fi.Mode().Perm()
	if old&0o077 == 0 {
		return
	}
	mode := fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) | old&^0o077
	if err := os.Chmod(path, mode); err != nil {
		t.errs = append(t.errs, err)
		return
	}
	t.changed++
	if t.log != nil && t.changed <= maxLogged {
		t.log.Warn("tightened the mode of a data dir entry: it could hold secrets and was readable by other users",
			"path", path, "was", fmt.Sprintf("%#o", old), "now", fmt.Sprintf("%#o", mode.Perm()))
	}
}

// tree fixes root and everything under it.
func (t *tightener) tree(root string) {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.errs = append(t.errs, err)
			return nil
		}
		t.fix(p)
		return nil
	})
	if err != nil {
		t.errs = append(t.errs, err)
	}
}

// releases fixes releases/ itself and each release's metadata file.
func (t *tightener) releases(dir string) {
	t.fix(dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.errs = append(t.errs, err)
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			t.fix(filepath.Join(dir, e.Name(), ".cutover-release.json"))
		}
	}
}

// DigestKey returns the data directory's digest key: 32 random bytes in
// dir/KeyFile (mode FileMode), created on first use. Release metadata
// records HMAC-SHA256 digests under this key, never bare hashes, so that a
// digest of a secret cannot be tested against guesses by anyone without
// the key. Two processes creating it at once end up with the same key.
func DigestKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := readKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, keyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create digest key %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, KeyFile+".tmp-*") // CreateTemp makes it 0600
	if err != nil {
		return nil, fmt.Errorf("create digest key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the link, or garbage
	_, err = tmp.Write(key)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create digest key %s: %w", path, err)
	}
	// A link, unlike a rename, fails if the key exists: a key made
	// meanwhile by another process wins, and is read back below.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create digest key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the key is usable either way; a lost link makes a new one
		d.Close()
	}
	return readKey(path)
}

func readKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read digest key: %w", err)
	}
	if len(key) != keyLen {
		return nil, fmt.Errorf("digest key %s holds %d bytes, want %d: remove it to have a new one made at the next start (digests recorded before then will not compare equal with later ones)", path, len(key), keyLen)
	}
	return key, nil
}
