package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

// TestFormChangedRefused: a daemon refuses a file whose form is not the
// one its data dir was written by, in both directions, instead of leaving
// the recorded instances unsupervised and serving from an empty app.
func TestFormChangedRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cutover.toml")
	load := func(body string) *config.Config {
		t.Helper()
		if err := os.WriteFile(path, []byte("data_dir = \"data\"\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	single := load("[app]\nname = \"shop\"\ncommand = \"./shop\"\n")
	multi := load("[apps.shop]\ncommand = \"./shop\"\nhosts = [\"shop.example.com\"]\n[apps.blog]\ncommand = \"./blog\"\ndefault = true\n")
	if err := formChanged(single); err != nil {
		t.Fatalf("a fresh data dir, single form: %v", err)
	}
	if err := formChanged(multi); err != nil {
		t.Fatalf("a fresh data dir, several apps: %v", err)
	}
	os.MkdirAll(single.DataDir, 0o700)
	os.WriteFile(filepath.Join(single.DataDir, "state.db"), nil, 0o600)
	if err := formChanged(multi); err == nil || !strings.Contains(err.Error(), "single-app form") {
		t.Errorf("several apps over a single-app data dir: %v", err)
	}
	os.Remove(filepath.Join(single.DataDir, "state.db"))
	os.MkdirAll(filepath.Join(single.DataDir, "apps", "shop"), 0o700)
	os.WriteFile(filepath.Join(single.DataDir, "apps", "shop", "state.db"), nil, 0o600)
	if err := formChanged(single); err == nil || !strings.Contains(err.Error(), "several apps") {
		t.Errorf("single form over a several-apps data dir: %v", err)
	}
}
