package release

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMetaRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := Meta{
		Source: SourceGit, Repo: "git@example.com:app.git", Ref: "v1.4.2",
		Commit: "0123456789abcdef0123456789abcdef01234567", CreatedBy: "alice",
		CreatedAt: time.Date(2026, 11, 22, 9, 35, 0, 0, time.UTC),
	}
	if err := WriteMeta(dir, want); err != nil {
		t.Fatal(err)
	}
	var got Meta
	if err := ReadMeta(dir, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != MetaFile {
		t.Errorf("dir holds %v, want only %s (no temporary file left)", ents, MetaFile)
	}
}

// A caller that records more embeds Meta; both read the same file.
func TestMetaEmbedded(t *testing.T) {
	type deployMeta struct {
		Meta
		ConfigDigest string            `json:"config_digest"`
		Env          map[string]string `json:"env"`
	}
	dir := t.TempDir()
	want := deployMeta{
		Meta:         Meta{Source: SourceDir, Path: "/src/app", CreatedBy: "bob", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		ConfigDigest: "sha256:abc",
		Env:          map[string]string{"GREETING": "sha256:0123456789ab"},
	}
	if err := WriteMeta(dir, want); err != nil {
		t.Fatal(err)
	}
	// Overwriting replaces the file whole.
	if err := WriteMeta(dir, want); err != nil {
		t.Fatal(err)
	}
	var got deployMeta
	if err := ReadMeta(dir, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	var base Meta
	if err := ReadMeta(dir, &base); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Meta, base); diff != "" {
		t.Errorf("base fields mismatch (-want +got):\n%s", diff)
	}
}

func TestReadMetaMissing(t *testing.T) {
	var m Meta
	err := ReadMeta(t.TempDir(), &m)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadMeta(no file) = %v, want fs.ErrNotExist", err)
	}
}

func TestReadMetaCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	var m Meta
	if err := ReadMeta(dir, &m); err == nil || !strings.Contains(err.Error(), MetaFile) {
		t.Errorf("ReadMeta(corrupt) = %v, want an error naming %s", err, MetaFile)
	}
}

func TestPrepareMeta(t *testing.T) {
	t.Setenv("SUDO_USER", "alice")
	t.Setenv("USER", "root")
	m := newManager(t)
	src := filepath.Join(t.TempDir(), "app")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(t.TempDir(), "app-v3.tgz")
	writeTarGz(t, tgz, map[string]string{"VERSION": "v3\n"})

	tests := []struct{ source, wantSource string }{{src, SourceDir}, {tgz, SourceTarball}}
	for _, tt := range tests {
		id, meta, err := m.PrepareMeta(tt.source, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := Meta{Source: tt.wantSource, Path: tt.source, CreatedBy: "alice", CreatedAt: meta.CreatedAt}
		if diff := cmp.Diff(want, meta); diff != "" {
			t.Errorf("PrepareMeta(%s) meta mismatch (-want +got):\n%s", tt.source, diff)
		}
		if meta.CreatedAt.IsZero() {
			t.Errorf("CreatedAt is zero")
		}
		var stored Meta
		if err := ReadMeta(m.Dir(id), &stored); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(meta, stored); diff != "" {
			t.Errorf("stored meta mismatch (-returned +stored):\n%s", diff)
		}
	}
}

func TestCreatedByFallsBack(t *testing.T) {
	t.Setenv("SUDO_USER", "")
	t.Setenv("USER", "")
	if got, want := createdBy(), strconv.Itoa(os.Getuid()); got != want {
		t.Errorf("createdBy() = %q, want %q", got, want)
	}
	t.Setenv("USER", "carol")
	if got, want := createdBy(), "carol"; got != want {
		t.Errorf("createdBy() = %q, want %q", got, want)
	}
}

// With record, the metadata file holds the caller's struct, embedding the
// Meta, from the moment the release is in place: it is written once.
func TestPrepareMetaRecord(t *testing.T) {
	m := newManager(t)
	src := filepath.Join(t.TempDir(), "app")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	type extended struct {
		Meta
		Digest string `json:"digest"`
	}
	var calls int
	id, meta, err := m.PrepareMeta(src, func(meta Meta) any {
		calls++
		return extended{Meta: meta, Digest: "sha256:abc"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("record called %d times, want once", calls)
	}
	var stored extended
	if err := ReadMeta(m.Dir(id), &stored); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(extended{Meta: meta, Digest: "sha256:abc"}, stored); diff != "" {
		t.Errorf("stored metadata mismatch (-want +stored):\n%s", diff)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(m.Dir(id), MetaFile+".tmp-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left in the release: %v", leftovers)
	}
}

// The metadata file and releases/ are the daemon user's only: the data
// directory may hold secrets (see package datadir).
func TestMetaAndReleasesDirOwnerOnly(t *testing.T) {
	data := t.TempDir()
	if _, err := NewManager(data); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(data, "releases")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("releases/ mode: %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	dir := t.TempDir()
	if err := WriteMeta(dir, Meta{Source: SourceDir}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, MetaFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode: %v, %v; want 0600", MetaFile, fi.Mode().Perm(), err)
	}
}
