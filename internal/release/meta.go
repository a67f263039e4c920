package release

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MetaFile is the name, inside a release directory, of the file that
// records where the release came from (see Meta).
const MetaFile = ".cutover-release.json"

// Meta.Source values.
const (
	SourceDir     = "dir"
	SourceTarball = "tarball"
	SourceGit     = "git"
)

// Meta records where a release came from, who made it and when. It is
// stored in the release's MetaFile; callers that record more (the config
// digest, the environment snapshot) embed it in a struct of their own and
// write that with WriteMeta.
type Meta struct {
	// Source is SourceDir, SourceTarball or SourceGit.
	Source string `json:"source"`
	// Path is the absolute path of the directory or tarball; empty for git.
	Path string `json:"path,omitempty"`
	// Repo is the git repository as given; empty unless Source is git.
	Repo string `json:"repo,omitempty"`
	// Ref is the git ref as given (tag, branch or commit).
	Ref string `json:"ref,omitempty"`
	// Commit is the full sha Ref resolved to.
	Commit string `json:"commit,omitempty"`
	// CreatedBy is $SUDO_USER, else $USER, else the numeric uid.
	CreatedBy string `json:"created_by"`
	// CreatedAt is when the release was prepared, in UTC.
	CreatedAt time.Time `json:"created_at"`
}

// PrepareMeta is Prepare that also records the release's Meta in its
// MetaFile, written (and synced) before the release is renamed into
// place. With record not nil, the file holds record(meta) instead: a
// caller's struct that embeds Meta and records more, written once rather
// than rewritten after.
func (m *Manager) PrepareMeta(source string, record func(Meta) any) (string, Meta, error) {
	abs, err := filepath.Abs(source)
	if err != nil {
		return "", Meta{}, fmt.Errorf("release source %s: %w", source, err)
	}
	meta := Meta{Source: SourceDir, Path: abs, CreatedBy: createdBy(), CreatedAt: m.now().UTC()}
	if fi, err := os.Stat(source); err == nil && !fi.IsDir() {
		meta.Source = SourceTarball // prepare refuses anything else
	}
	id, err := m.prepare(source, func(tmp string) error { return WriteMeta(tmp, recorded(meta, record)) })
	if err != nil {
		return "", Meta{}, err
	}
	return id, meta, nil
}

// recorded is what a release's MetaFile holds: record(meta), or meta.
func recorded(meta Meta, record func(Meta) any) any {
	if record == nil {
		return meta
	}
	return record(meta)
}

// WriteMeta writes meta as JSON to dir's MetaFile atomically: to a temporary
// file, synced, then renamed over the old one.
func WriteMeta(dir string, meta any) error {
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("write release metadata in %s: %w", dir, err)
	}
	b = append(b, '\n')
	path := filepath.Join(dir, MetaFile)
	if err := WriteFileAtomic(path, b); err != nil {
		return fmt.Errorf("write release metadata %s: %w", path, err)
	}
	return nil
}

// WriteFileAtomic writes b to path with mode 0600 atomically: to a temporary
// file beside it, synced, renamed over the old one, the directory synced.
func WriteFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp-" + randHex(4)
	if err := writeSynced(tmp, b); err != nil {
		os.Remove(tmp) //nolint:errcheck // best effort; err is what matters
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp) //nolint:errcheck // best effort
		return err
	}
	return syncDir(filepath.Dir(path))
}

// ReadMeta decodes dir's MetaFile into v (a *Meta, or a pointer to a
// caller's struct that embeds Meta). A release without one gives an error
// wrapping fs.ErrNotExist.
func ReadMeta(dir string, v any) error {
	path := filepath.Join(dir, MetaFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read release metadata: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read release metadata %s: %w", path, err)
	}
	return nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// createdBy names the person behind this process: the user who ran sudo,
// else the login user, else the numeric uid.
func createdBy() string {
	for _, k := range []string{"SUDO_USER", "USER"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	return strconv.Itoa(os.Getuid())
}
