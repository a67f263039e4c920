package deploy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/release"
)

// assertNoSecretUnder fails if a file under dir holds secret: dir is a
// release directory, which the app may serve as its document root.
func assertNoSecretUnder(t *testing.T, dir, secret string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s holds the environment's secret value %q: the app can serve it", p, secret)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rebuiltEnv returns the value of API_KEY in the app config state.db
// records for release id.
func (h *harness) rebuiltEnv(id string) string {
	h.t.Helper()
	rec, err := h.store.Release(context.Background(), id)
	if err != nil {
		h.t.Fatalf("release %s after the rebuild: %v", id, err)
	}
	app, err := decodeAppConfig(rec.ConfigJSON)
	if err != nil {
		h.t.Fatal(err)
	}
	return app.Env["API_KEY"]
}

// TestSnapshotOutsideReleaseDir: prepare writes no environment value into
// releases/<id>/ (the app's working directory, often its document root);
// the configuration snapshot is in snapshots/<id>.json, 0600 in a 0700
// directory, and a daemon that lost state.db still runs each release with
// the environment it was deployed with, not with cutover.toml as it is now.
// Before, the snapshot was releases/<id>/.cutover-app.json.
func TestSnapshotOutsideReleaseDir(t *testing.T) {
	h := newHarness(t, setup{})
	h.writeConfig(setup{env: []string{`API_KEY = "sk_live_first"`}})
	v1 := h.mustDeploy("v1", nil)
	h.writeConfig(setup{env: []string{`API_KEY = "sk_live_second"`}})
	v2 := h.mustDeploy("v2", nil)
	assertNoSecretUnder(t, filepath.Join(h.cfg.DataDir, "releases", v1), "sk_live_first")
	assertNoSecretUnder(t, filepath.Join(h.cfg.DataDir, "releases", v2), "sk_live_second")

	snaps := filepath.Join(h.cfg.DataDir, "snapshots")
	if fi, err := os.Stat(snaps); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("snapshots directory: got %v (%v), want mode 0700", fi, err)
	}
	for _, id := range []string{v1, v2} {
		fi, err := os.Stat(filepath.Join(snaps, id+".json"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("snapshot of %s: got %v (%v), want mode 0600", id, fi, err)
		}
	}

	h.writeConfig(setup{env: []string{`API_KEY = "sk_live_now"`}})
	closeLikeADeadDaemon(h.eng)
	h.loseState()
	if err := h.newEngine().Recover(context.Background()); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if got := h.rebuiltEnv(v1); got != "sk_live_first" {
		t.Errorf("API_KEY of %s after the rebuild: got %q, want sk_live_first, as deployed", v1, got)
	}
	if got := h.rebuiltEnv(v2); got != "sk_live_second" {
		t.Errorf("API_KEY of %s after the rebuild: got %q, want sk_live_second, as deployed", v2, got)
	}
}

// TestRecoverMovesOldSnapshots: the snapshot an older cutover left in a
// release directory is moved to snapshots/ at start, the old file is
// removed, and the rebuild still restores the release's configuration.
func TestRecoverMovesOldSnapshots(t *testing.T) {
	h := newHarness(t, setup{})
	h.writeConfig(setup{env: []string{`API_KEY = "sk_live_first"`}})
	v1 := h.mustDeploy("v1", nil)
	h.writeConfig(setup{env: []string{`API_KEY = "sk_live_second"`}})
	v2 := h.mustDeploy("v2", nil)
	snaps := filepath.Join(h.cfg.DataDir, "snapshots")
	for _, id := range []string{v1, v2} {
		// Where an older cutover wrote it.
		if err := os.Rename(filepath.Join(snaps, id+".json"), filepath.Join(h.cfg.DataDir, "releases", id, release.SnapshotFile)); err != nil {
			t.Fatal(err)
		}
	}

	h.writeConfig(setup{env: []string{`API_KEY = "sk_live_now"`}})
	closeLikeADeadDaemon(h.eng)
	h.loseState()
	if err := h.newEngine().Recover(context.Background()); err != nil {
		t.Fatalf("recover: %v", err)
	}
	for id, secret := range map[string]string{v1: "sk_live_first", v2: "sk_live_second"} {
		if got := h.rebuiltEnv(id); got != secret {
			t.Errorf("API_KEY of %s after the rebuild: got %q, want %s, as deployed", id, got, secret)
		}
		old := filepath.Join(h.cfg.DataDir, "releases", id, release.SnapshotFile)
		if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after Recover: got %v, want it removed", old, err)
		}
		assertNoSecretUnder(t, filepath.Join(h.cfg.DataDir, "releases", id), secret)
		if fi, err := os.Stat(filepath.Join(snaps, id+".json")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("snapshot of %s after Recover: got %v (%v), want it moved there, mode 0600", id, fi, err)
		}
	}
}
