package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/envfile"
	"github.com/cutover/cutover/internal/release"
)

func TestSnapshotEnv(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		env     map[string]string
		envFile string
		want    map[string]string
		wantErr string
	}{
		{name: "no env file", env: map[string]string{"A": "1"}, want: map[string]string{"A": "1"}},
		{name: "nothing at all", want: map[string]string{}},
		{
			name:    "env file over app.env",
			env:     map[string]string{"A": "from-toml", "B": "kept"},
			envFile: write("merge.env", "# secrets\nA=from-file\nexport C='quoted value'\n"),
			want:    map[string]string{"A": "from-file", "B": "kept", "C": "quoted value"},
		},
		{
			name:    "PORT refused",
			env:     map[string]string{"A": "1"},
			envFile: write("port.env", "A=2\nPORT=9000\n"),
			wantErr: "PORT is set by cutover",
		},
		{name: "missing env file", envFile: filepath.Join(dir, "missing.env"), wantErr: "app.env_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var orig map[string]string
			if tt.env != nil {
				orig = map[string]string{}
				for k, v := range tt.env {
					orig[k] = v
				}
			}
			app := config.App{Name: "app", Env: tt.env, EnvFile: tt.envFile}
			got, snap, err := snapshotEnv(app)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("snapshotEnv: got %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("snapshotEnv: %v", err)
			}
			if diff := cmp.Diff(tt.want, snap); diff != "" {
				t.Errorf("snapshot (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got.Env); diff != "" {
				t.Errorf("app.Env of the snapshot (-want +got):\n%s", diff)
			}
			if got.EnvFile != "" {
				t.Errorf("EnvFile of the snapshot: got %q, want it cleared", got.EnvFile)
			}
			if diff := cmp.Diff(orig, tt.env); diff != "" {
				t.Errorf("the config's [app.env] was changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestDeployRecordsEnvSnapshot: a deploy records the merged environment
// in the release's app config (so a rollback needs no env_file) and only
// digests of the values in its metadata.
func TestDeployRecordsEnvSnapshot(t *testing.T) {
	h := newHarness(t, setup{})
	envFile := filepath.Join(h.root, "app.env")
	if err := os.WriteFile(envFile, []byte("SECRET_TOKEN=s3cr3t-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.writeConfig(setup{app: []string{`env_file = "app.env"`}})
	v1 := h.mustDeploy("v1", nil)
	rec, err := h.store.Release(t.Context(), v1)
	if err != nil {
		t.Fatal(err)
	}
	app, err := decodeAppConfig(rec.ConfigJSON)
	if err != nil {
		t.Fatal(err)
	}
	if app.EnvFile != "" || app.Env["SECRET_TOKEN"] != "s3cr3t-value" {
		t.Errorf("recorded app config: got env_file %q, SECRET_TOKEN=%q; want no env_file and the value from it", app.EnvFile, app.Env["SECRET_TOKEN"])
	}
	if strings.Contains(rec.MetaJSON, "s3cr3t-value") {
		t.Errorf("release metadata shows the secret value: %s", rec.MetaJSON)
	}
	if !strings.Contains(rec.MetaJSON, `"SECRET_TOKEN":"hmac-sha256:`) {
		t.Errorf("release metadata: got %s, want SECRET_TOKEN with a keyed digest", rec.MetaJSON)
	}
	// Never a bare hash, which anyone reading it could test guesses
	// against: sha256("s3cr3t-value") starts 5d1b2b4a4c0d.
	if strings.Contains(rec.MetaJSON, `"sha256:`) || strings.Contains(rec.MetaJSON, bareSHA256("s3cr3t-value")[:12]) {
		t.Errorf("release metadata holds a bare sha256: %s", rec.MetaJSON)
	}
	// The release directory's metadata file records the same.
	var onDisk ReleaseMeta
	if err := release.ReadMeta(rec.Dir, &onDisk); err != nil {
		t.Fatal(err)
	}
	if b, err := json.Marshal(onDisk); err != nil || string(b) != rec.MetaJSON {
		t.Errorf("the release's %s holds %s, want what the state records: %s", release.MetaFile, b, rec.MetaJSON)
	}
}

func bareSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestNewRekeysBareDigests: release metadata recorded with bare sha256
// digests by an older cutover is converted to keyed digests when the
// engine starts, in state and in the release's metadata file.
func TestNewRekeysBareDigests(t *testing.T) {
	h := newHarness(t, setup{})
	h.writeConfig(setup{env: []string{`API_KEY = "sk_live_abcdef"`}})
	v1 := h.mustDeploy("v1", nil)
	rec, err := h.store.Release(t.Context(), v1)
	if err != nil {
		t.Fatal(err)
	}
	var keyed ReleaseMeta
	if err := json.Unmarshal([]byte(rec.MetaJSON), &keyed); err != nil {
		t.Fatal(err)
	}
	// What an older cutover recorded.
	old := keyed
	old.Env = map[string]string{}
	for k := range keyed.Env {
		old.Env[k] = "sha256:" + bareSHA256("whatever")[:12]
	}
	old.Env["API_KEY"] = "sha256:" + bareSHA256("sk_live_abcdef")[:12]
	old.EnvDigest = "sha256:" + bareSHA256("env")
	cfgSum := sha256.Sum256([]byte("the config"))
	old.ConfigDigest = "sha256:" + hex.EncodeToString(cfgSum[:])
	b, _ := json.Marshal(old)
	if err := h.store.SetReleaseMeta(t.Context(), v1, string(b)); err != nil {
		t.Fatal(err)
	}
	if err := release.WriteMeta(rec.Dir, old); err != nil {
		t.Fatal(err)
	}

	closeLikeADeadDaemon(h.eng)
	eng := h.newEngine()
	if err := eng.Recover(t.Context()); err != nil {
		t.Fatalf("recover: %v", err)
	}
	rec, err = h.store.Release(t.Context(), v1)
	if err != nil {
		t.Fatal(err)
	}
	var got, onDisk ReleaseMeta
	if err := json.Unmarshal([]byte(rec.MetaJSON), &got); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rec.MetaJSON, `"sha256:`) {
		t.Fatalf("bare digests left after the start: %s", rec.MetaJSON)
	}
	if diff := cmp.Diff(keyed.Env, got.Env); diff != "" {
		t.Errorf("env digests (-as a deploy records them +converted):\n%s", diff)
	}
	if got.EnvDigest != keyed.EnvDigest {
		t.Errorf("env digest: got %q, want %q", got.EnvDigest, keyed.EnvDigest)
	}
	if want := envfile.KeyedDigest(eng.digestKey, cfgSum[:]); got.ConfigDigest != want {
		t.Errorf("config digest: got %q, want %q", got.ConfigDigest, want)
	}
	if err := release.ReadMeta(rec.Dir, &onDisk); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, onDisk); diff != "" {
		t.Errorf("the release's %s (-state +file):\n%s", release.MetaFile, diff)
	}
}

// TestDeployRecordsUser: the user a deploy request names is the release's
// creator, in the state and in the release directory's metadata file.
func TestDeployRecordsUser(t *testing.T) {
	h := newHarness(t, setup{})
	live, evs, err := h.deploy(Request{Source: h.source("v1", nil), User: "carol"})
	if err != nil {
		t.Fatalf("deploy: %v\nevents:\n%s", err, describe(evs))
	}
	rec, err := h.store.Release(t.Context(), live)
	if err != nil {
		t.Fatal(err)
	}
	var recorded, onDisk ReleaseMeta
	if err := json.Unmarshal([]byte(rec.MetaJSON), &recorded); err != nil {
		t.Fatal(err)
	}
	if err := release.ReadMeta(rec.Dir, &onDisk); err != nil {
		t.Fatal(err)
	}
	if recorded.CreatedBy != "carol" || onDisk.CreatedBy != "carol" {
		t.Errorf("created_by: state %q, %s %q; want carol in both", recorded.CreatedBy, release.MetaFile, onDisk.CreatedBy)
	}
}
