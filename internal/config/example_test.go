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
	commented := regexp.MustCompile(`(?m)^# ([a-z_A-Z0-9]+ = .*|\[\[[a-z.]+\]\])$`)
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
		cmpopts.IgnoreFields(App{}, "Env", "EnvFile", "TLSCert", "TLSKey", "HSTS", "TCP"),
		cmpopts.IgnoreFields(Proxy{}, "PreviewListen", "TrustedProxies", "TLSListen", "HTTPSPort"),
		cmpopts.IgnoreFields(Deploy{}, "BeforeSwitch", "AfterSwitch"),
		cmpopts.IgnoreFields(Release{}, "Repo", "Test", "Build", "Shared"),
		cmpopts.IgnoreFields(Database{}, "URL"),
		cmpopts.IgnoreFields(TLS{}, "Email", "CA", "CARoot"),
		cmpopts.IgnoreFields(Metrics{}, "Listen"),
		cmpopts.IgnoreFields(Dashboard{}, "Listen", "Token"),
		cmpopts.IgnoreFields(Log{}, "Access"),
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
		{"tls.email", want.TLS.Email, got.TLS.Email},
		{"tls.ca", want.TLS.CA, got.TLS.CA},
		{"tls.ca_root", want.TLS.CARoot, filepath.Base(got.TLS.CARoot)},
		{"metrics.listen", want.Metrics.Listen, got.Metrics.Listen},
		{"dashboard.listen", want.Dashboard.Listen, got.Dashboard.Listen},
		{"dashboard.token", want.Dashboard.Token, got.Dashboard.Token},
		{"log.access", want.Log.Access, got.Log.Access},
	} {
		if k.commented != "" && k.commented != 0 {
			t.Errorf("%s: default got %v, want it empty", k.key, k.commented)
		}
		if k.set == "" || k.set == 0 || k.set == "." {
			t.Errorf("%s: uncommented example not loaded: got %v", k.key, k.set)
		}
	}
}

// TestExampleCoversSchema checks that the examples mention every key: the
// single-app form's, and the multi-app form's [apps.NAME] ones.
func TestExampleCoversSchema(t *testing.T) {
	single, multi := Example("x"), ExampleApps("x", nil)
	for _, k := range allKeys() {
		doc := single
		if rest, ok := strings.CutPrefix(k, "apps."+anyName); ok {
			if rest == ".name" {
				continue // the table's name is the app's; the key is not shown
			}
			doc, k = multi, "apps.x"+rest
		} else if k == "apps" {
			doc, k = multi, "apps.x"
		}
		last := lastPart(k)
		re := regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(last) + ` = |^\[` + regexp.QuoteMeta(k) + `\]$|^(# )?\[\[` + regexp.QuoteMeta(k) + `\]\]$`)
		if !re.MatchString(doc) {
			t.Errorf("example does not show %s", k)
		}
	}
}

// TestExampleApps checks the multi-app examples: the file init --app
// writes loads, its app's defaults are the single-app form's, the keys it
// shows commented out are the defaults, and apps appended to it load.
func TestExampleApps(t *testing.T) {
	doc := ExampleApps("shop", nil)
	c := loadString(t, doc)
	if !c.MultiApp() {
		t.Fatal("ExampleApps: not the multi-app form")
	}
	u, err := c.Unit("")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "shop" || !u.Default || len(u.Hosts) != 0 || u.DataDir != filepath.Join(c.DataDir, "apps", "shop") {
		t.Errorf("unit: name %q, default %v, hosts %v, data dir %q", u.Name, u.Default, u.Hosts, u.DataDir)
	}
	s := loadString(t, Example("shop")).Units()[0]
	ignore := cmpopts.IgnoreFields(Unit{}, "DataDir", "Cookie")
	if diff := cmp.Diff(s, u, ignore); diff != "" {
		t.Errorf("an app's defaults differ between the forms (-single +multi):\n%s", diff)
	}

	commented := regexp.MustCompile(`(?m)^# ([a-z_A-Z0-9]+ = .*|\[\[[a-z.]+\]\])$`)
	uncommented := loadString(t, commented.ReplaceAllString(doc, "$1"))
	got := uncommented.Units()[0]
	if got.Hosts[0] != "shop.example.com" || got.Database.URL != "${DATABASE_URL}" || got.App.Env["RAILS_ENV"] != "production" {
		t.Errorf("uncommented examples not loaded: hosts %v, url %q, env %v", got.Hosts, got.Database.URL, got.App.Env)
	}
	examples := []cmp.Option{
		ignore,
		cmpopts.IgnoreFields(Unit{}, "Hosts"),
		cmpopts.IgnoreFields(App{}, "Env", "EnvFile", "TLSCert", "TLSKey", "HSTS", "TCP"),
		cmpopts.IgnoreFields(Deploy{}, "BeforeSwitch", "AfterSwitch"),
		cmpopts.IgnoreFields(Release{}, "Repo", "Test", "Build", "Shared"),
		cmpopts.IgnoreFields(Database{}, "URL"),
	}
	if diff := cmp.Diff(u, got, examples...); diff != "" {
		t.Errorf("documented defaults differ from Load's (-commented +uncommented):\n%s", diff)
	}

	two := loadString(t, doc+"\n"+ExampleApp("blog.v2", nil, false)+"\n"+ExampleApp("admin", []string{"admin.example.com", "*.admin.example.com"}, false))
	if diff := cmp.Diff([]string{"admin", "blog.v2", "shop"}, two.AppNames()); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}
	blog, err := two.Unit("blog.v2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"blog.v2.example.com"}, blog.Hosts); diff != "" || blog.Default || blog.Cookie != "cutover_release_blog_v2" {
		t.Errorf("appended app: hosts (-want +got) %s, default %v, cookie %q", diff, blog.Default, blog.Cookie)
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
	m = regexp.MustCompile("(?s)A file of two apps:\n\n```toml\n(.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("docs/config.md has no file of two apps")
	}
	if got := loadString(t, m[1]).AppNames(); len(got) != 2 {
		t.Errorf("the file of two apps has apps %q", got)
	}
	for _, k := range allKeys() {
		table := strings.ReplaceAll(k, anyName, "NAME")
		if k == "apps" {
			table = "apps.NAME"
		}
		if !strings.Contains(doc, "`"+lastPart(k)+"`") && !strings.Contains(doc, "`["+table+"]`") {
			t.Errorf("docs/config.md does not describe %s", k)
		}
	}
}
