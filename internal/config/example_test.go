package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func loadString(t *testing.T, doc string) *Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cutover.toml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(Example): %v\n%s", err, doc)
	}
	return c
}

func TestExampleLoads(t *testing.T) {
	c := loadString(t, Example("shop"))
	if c.App.Name != "shop" {
		t.Errorf("app.name: got %q, want %q", c.App.Name, "shop")
	}
}

// TestExampleDefaults uncomments every commented-out key of the example:
// the defaults it documents must be the defaults Load fills in. Keys whose
// default is empty show an example instead, which must load.
func TestExampleDefaults(t *testing.T) {
	commented := regexp.MustCompile(`(?m)^# ([a-z_A-Z0-9]+ = .*)$`)
	doc := Example("shop")
	uncommented := commented.ReplaceAllString(doc, "$1")
	if uncommented == doc {
		t.Fatal("the example has no commented-out keys")
	}
	got := loadString(t, uncommented)
	want := loadString(t, doc)
	// Both files live in different temp dirs; only the keys matter.
	ignore := cmpopts.IgnoreFields(Config{}, "Path", "DataDir")
	examples := []cmp.Option{
		cmpopts.IgnoreFields(App{}, "Env", "EnvFile"),
		cmpopts.IgnoreFields(Proxy{}, "PreviewListen", "TrustedProxies"),
		cmpopts.IgnoreFields(Deploy{}, "BeforeSwitch", "AfterSwitch"),
		cmpopts.IgnoreFields(Release{}, "Repo", "Test", "Build", "Shared"),
		cmpopts.IgnoreFields(Database{}, "URL"),
	}
	if diff := cmp.Diff(want, got, append(examples, ignore)...); diff != "" {
		t.Errorf("documented defaults differ from Load's (-commented +uncommented):\n%s", diff)
	}
	if got.Database.URL != "${DATABASE_URL}" || got.App.Env["RAILS_ENV"] != "production" {
		t.Errorf("uncommented examples not loaded: url %q, env %v", got.Database.URL, got.App.Env)
	}
	// The keys shown by example: empty by default, set once uncommented.
	for _, k := range []struct {
		key            string
		commented, set any
	}{
		{"app.env_file", want.App.EnvFile, filepath.Base(got.App.EnvFile)},
		{"proxy.preview_listen", want.Proxy.PreviewListen, got.Proxy.PreviewListen},
		{"deploy.before_switch", want.Deploy.BeforeSwitch, got.Deploy.BeforeSwitch},
		{"deploy.after_switch", want.Deploy.AfterSwitch, got.Deploy.AfterSwitch},
		{"release.repo", want.Release.Repo, got.Release.Repo},
		{"release.test", want.Release.Test, got.Release.Test},
		{"release.build", want.Release.Build, got.Release.Build},
		{"release.shared", len(want.Release.Shared), len(got.Release.Shared)},
	} {
		if k.commented != "" && k.commented != 0 {
			t.Errorf("%s: default got %v, want it empty", k.key, k.commented)
		}
		if k.set == "" || k.set == 0 || k.set == "." {
			t.Errorf("%s: uncommented example not loaded: got %v", k.key, k.set)
		}
	}
}

// TestExampleCoversSchema checks that the example mentions every key.
func TestExampleCoversSchema(t *testing.T) {
	doc := Example("x")
	for _, k := range allKeys() {
		last := lastPart(k)
		re := regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(last) + ` = |^\[` + regexp.QuoteMeta(k) + `\]$`)
		if !re.MatchString(doc) {
			t.Errorf("example does not show %s", k)
		}
	}
}

func lastPart(k string) string {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '.' {
			return k[i+1:]
		}
	}
	return k
}

func TestExampleName(t *testing.T) {
	for in, want := range map[string]string{
		"shop":        "shop",
		"my shop!":    "my-shop-",
		"":            "app",
		`a"b`:         "a-b",
		"Über.app_v2": "--ber.app_v2",
	} {
		c := loadString(t, Example(in))
		if c.App.Name != want {
			t.Errorf("Example(%q): app.name got %q, want %q", in, c.App.Name, want)
		}
	}
}

// TestDocs checks docs/config.md against the code: its complete file
// loads, and it describes every key.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	m := regexp.MustCompile("(?s)## A complete file\n\n```toml\n(.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("docs/config.md has no complete file")
	}
	loadString(t, m[1])
	for _, k := range allKeys() {
		if !strings.Contains(doc, "`"+lastPart(k)+"`") && !strings.Contains(doc, "`["+k+"]`") {
			t.Errorf("docs/config.md does not describe %s", k)
		}
	}
}
