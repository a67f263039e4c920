package config

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// multiBase is a small valid multi-app file: lines 1 to 6. Cases append
// from line 7, so their keys land in [apps.blog] unless they open a table.
const multiBase = "[apps.shop]\ncommand = \"./shop --port $PORT\"\nhosts = [\"Shop.Example.com\", \"*.shop.example.com\"]\n" +
	"[apps.blog]\ncommand = \"./blog\"\ndefault = true\n"

// wantUnit is the Unit parse gives for app name with command in
// /srv/shop, from the defaults, changed by edit.
func wantUnit(name, command string, edit func(u *Unit)) Unit {
	d := defaults()
	u := Unit{
		Name:     name,
		App:      d.App,
		Deploy:   d.Deploy,
		Release:  d.Release,
		Database: d.Database,
		DataDir:  "/srv/shop/.cutover/apps/" + name,
		Cookie:   "cutover_release_" + name,
	}
	u.App.Name = name
	u.App.Command = command
	u.App.Signal = syscall.SIGTERM
	u.Deploy.BatchCount = 1
	u.Deploy.StepPercents = []int{5, 25, 50}
	edit(&u)
	return u
}

// shopUnit and blogUnit are multiBase's apps.
func shopUnit(u *Unit) { u.Hosts = []string{"shop.example.com", "*.shop.example.com"} }
func blogUnit(u *Unit) { u.Default = true }

func TestParseApps(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []Unit
	}{
		{
			"two apps with the defaults",
			multiBase,
			[]Unit{wantUnit("blog", "./blog", blogUnit), wantUnit("shop", "./shop --port $PORT", shopUnit)},
		},
		{
			"each app its own tables",
			multiBase + `instances = 4
stop_signal = "INT"
env_file = "blog.env"
[apps.blog.env]
THEME = "dark"
[apps.blog.health]
path = "/up"
restart_after = 0
[apps.blog.deploy]
strategy = "canary"
steps = ["10%"]
[apps.blog.release]
keep = 2
repo = "../blog.git"
shared = ["./uploads/"]
[apps.blog.database]
url = "sqlite:///srv/blog/blog.db"
migrate_command = "./blog migrate"
[apps.shop.deploy]
strategy = "rolling"
batch = "50%"
`,
			[]Unit{
				wantUnit("blog", "./blog", func(u *Unit) {
					blogUnit(u)
					u.App.Instances = 4
					u.App.StopSignal, u.App.Signal = "INT", syscall.SIGINT
					u.App.EnvFile = "/srv/shop/blog.env"
					u.App.Env = map[string]string{"THEME": "dark"}
					u.App.Health.Path = "/up"
					u.App.Health.RestartAfter = 0
					u.Deploy.Strategy = "canary"
					u.Deploy.Steps, u.Deploy.StepPercents = []string{"10%"}, []int{10}
					u.Release.Keep = 2
					u.Release.Repo = "/srv/blog.git"
					u.Release.Shared = []string{"uploads"}
					u.Database.URL = "sqlite:///srv/blog/blog.db"
					u.Database.MigrateCommand = "./blog migrate"
				}),
				wantUnit("shop", "./shop --port $PORT", func(u *Unit) {
					shopUnit(u)
					u.Deploy.Strategy = "rolling"
					u.Deploy.Batch, u.Deploy.BatchCount, u.Deploy.BatchPercent = "50%", 0, 50
				}),
			},
		},
		{
			"an only app without hosts is the default",
			"[apps.shop]\ncommand = \"./shop\"\n",
			[]Unit{wantUnit("shop", "./shop", func(u *Unit) { u.Default = true })},
		},
		{
			"an only app with hosts is not",
			"[apps.shop]\ncommand = \"./shop\"\nhosts = [\"shop.example.com\"]\n[proxy]\npreview_listen = \"127.0.0.1:8081\"\n",
			[]Unit{wantUnit("shop", "./shop", func(u *Unit) { u.Hosts = []string{"shop.example.com"} })},
		},
		{
			"name equal to the table's",
			"[apps.shop]\nname = \"shop\"\ncommand = \"./shop\"\n",
			[]Unit{wantUnit("shop", "./shop", func(u *Unit) { u.Default = true })},
		},
		{
			"a name with dots",
			"[apps.\"shop.v2\"]\ncommand = \"./shop\"\n[apps.\"shop.v2\".deploy]\nwatch = \"1m\"\n",
			[]Unit{wantUnit("shop.v2", "./shop", func(u *Unit) {
				u.Default = true
				u.Cookie = "cutover_release_shop_v2"
				u.Deploy.Watch = Duration{time.Minute}
			})},
		},
		{
			"inline tables and dotted keys",
			"data_dir = \"/var/lib/cutover\"\n[apps]\nblog.command = \"./blog\"\nblog.default = true\nshop = { command = \"./shop\", hosts = [\"SHOP.example.com\"], health = { path = \"/up\" } }\n",
			[]Unit{
				wantUnit("blog", "./blog", func(u *Unit) { blogUnit(u); u.DataDir = "/var/lib/cutover/apps/blog" }),
				wantUnit("shop", "./shop", func(u *Unit) {
					u.Hosts = []string{"shop.example.com"}
					u.App.Health.Path = "/up"
					u.DataDir = "/var/lib/cutover/apps/shop"
				}),
			},
		},
		{
			"the proxy cookie names each app's",
			"[proxy]\ncookie = \"v\"\n" + multiBase,
			[]Unit{
				wantUnit("blog", "./blog", func(u *Unit) { blogUnit(u); u.Cookie = "v_blog" }),
				wantUnit("shop", "./shop --port $PORT", func(u *Unit) { shopUnit(u); u.Cookie = "v_shop" }),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("cutover.toml", "/srv/shop", []byte(tt.doc))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !c.MultiApp() {
				t.Error("MultiApp() = false")
			}
			if diff := cmp.Diff(tt.want, c.Units()); diff != "" {
				t.Errorf("Units (-want +got):\n%s", diff)
			}
			// The single-app form's tables stay zero: a caller still on
			// them sees no app rather than a made-up one.
			if c.App.Name != "" || c.App.Command != "" || c.Deploy.Strategy != "" || c.Release.Keep != 0 || c.Database.Dir != "" {
				t.Errorf("single-app tables filled in the multi-app form: %+v %+v %+v %+v", c.App, c.Deploy, c.Release, c.Database)
			}
		})
	}
}

// TestParseAppsShareNothing checks that the defaults of two apps are
// separate values: a slice changed in one app is not changed in another.
func TestParseAppsShareNothing(t *testing.T) {
	c, err := parse("cutover.toml", "/srv/shop", []byte(multiBase))
	if err != nil {
		t.Fatal(err)
	}
	c.Apps["shop"].Deploy.Steps[0] = "1%"
	c.Apps["shop"].Database.PreviewData = append(c.Apps["shop"].Database.PreviewData, "x")
	if got := c.Apps["blog"].Deploy.Steps[0]; got != "5%" {
		t.Errorf("blog's steps changed with shop's: %q", got)
	}
	if got := c.Apps["blog"].Database.PreviewData; len(got) != 0 {
		t.Errorf("blog's preview_data changed with shop's: %q", got)
	}
}

func TestParseAppsErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{
			"upstream_protocol in an app",
			"[apps.shop]\ncommand = \"x\"\nupstream_protocol = \"grpc\"\n",
			`cutover.toml:3: apps.shop.upstream_protocol: must be "http1" (HTTP/1.1 to the instances) or "h2c" (HTTP/2 without TLS, for a gRPC server), got "grpc"`,
		},
		{
			"gRPC health check of an http1 app",
			"[apps.shop]\ncommand = \"x\"\n[apps.shop.health]\ngrpc = true\n",
			`cutover.toml:4: apps.shop.health.grpc: needs upstream_protocol = "h2c" in the same table: the gRPC health protocol runs over HTTP/2, and an app spoken to over HTTP/1.1 is checked with a GET of health.path`,
		},
		// The form.
		{
			"both forms",
			"[app]\nname = \"x\"\ncommand = \"y\"\n[deploy]\nwatch = \"1s\"\n[apps.x]\ncommand = \"z\"\n",
			`cutover.toml:6: apps: the multi-app form ([apps.NAME], from line 6) cannot be mixed with the single-app form ([app] on line 1, [deploy] on line 4); ` +
				`a file holds one: move each app's deploy, release and database tables under it as [apps.NAME.deploy]…, or keep [app] and remove [apps]`,
		},
		{
			"both forms, dotted keys",
			"[apps.x]\ncommand = \"z\"\n[release]\nkeep = 3\n",
			`cutover.toml:1: apps: the multi-app form ([apps.NAME], from line 1) cannot be mixed with the single-app form ([release] on line 3); ` +
				`a file holds one: move each app's deploy, release and database tables under it as [apps.NAME.deploy]…, or keep [app] and remove [apps]`,
		},
		{"no app", "data_dir = \"x\"\n[apps]\n", `cutover.toml:2: apps: holds no app; add an [apps.NAME] table with at least command = "..." (cutover init --app NAME writes one)`},
		{"no app, inline", "apps = {}\n", `cutover.toml:1: apps: holds no app; add an [apps.NAME] table with at least command = "..." (cutover init --app NAME writes one)`},
		{"apps not a table", "apps = [\"shop\"]\n", `cutover.toml:1: apps: must be a table of tables, one per name, got an array`},
		{"app not a table", "[apps]\nshop = \"./shop\"\n", `cutover.toml:2: apps.shop: must be a table, got the string "./shop"`},
		{"hosts in [app]", base + "hosts = [\"shop.example.com\"]\n", `cutover.toml:4: app.hosts: unknown key; hosts is a key of the multi-app form, whose [apps.NAME] tables replace [app] (see docs/config.md)`},
		// Names.
		{"name differs", multiBase + "name = \"blog2\"\n", `cutover.toml:7: apps.blog.name: must be "blog", the name of its table, or be left out; got "blog2"`},
		{"bad name", multiBase + "[apps.\"a b\"]\ncommand = \"x\"\nhosts = [\"x.com\"]\n", `cutover.toml:7: apps."a b": the app's name ("a b") must be letters, digits, '-', '_' and '.'`},
		{"name ..", multiBase + "[apps.\"..\"]\ncommand = \"x\"\nhosts = [\"x.com\"]\n", `cutover.toml:7: apps."..": the app's name ("..") names its data directory <data_dir>/apps/NAME, and cannot be ".."`},
		{
			"cookies collide",
			multiBase + "[apps.\"a.b\"]\ncommand = \"x\"\nhosts = [\"x.com\"]\n[apps.a_b]\ncommand = \"x\"\nhosts = [\"y.com\"]\n",
			`cutover.toml:10: apps.a_b: its version cookie "cutover_release_a_b" is also app "a.b"'s (line 7), since '.' is written '_' in it; rename one of the two`,
		},
		// Each app's keys, as the single-app form's.
		{"command missing", multiBase + "[apps.admin]\nhosts = [\"x.com\"]\n", `cutover.toml:7: apps.admin.command: required key is missing; add command = "./bin/server --port $PORT" to [apps.admin]`},
		{"deploy value", multiBase + "[apps.shop.deploy]\nbatch = 0\n", `cutover.toml:8: apps.shop.deploy.batch: must be between 1 and 64 instances, or a percentage such as "50%", got 0`},
		{"quoted name's value", multiBase + "[apps.\"b.c\".deploy]\nbatch = 0\n[apps.\"b.c\"]\ncommand = \"x\"\ndefault = false\nhosts = [\"b.c\"]\n", `cutover.toml:8: apps."b.c".deploy.batch: must be between 1 and 64 instances, or a percentage such as "50%", got 0`},
		{"health value", multiBase + "[apps.blog.health]\nhealthy_after = 0\n", `cutover.toml:8: apps.blog.health.healthy_after: must be at least 1, got 0`},
		{"env name", multiBase + "[apps.blog.env]\n\"A.B\" = \"x\"\n", `cutover.toml:8: apps.blog.env."A.B": must be a variable name of letters, digits and '_', not starting with a digit`},
		{"release value", multiBase + "[apps.blog.release]\nkeep = 1\n", `cutover.toml:8: apps.blog.release.keep: must be at least 2 (the live release and the rollback target), got 1`},
		{"migrate_command without url", multiBase + "[apps.blog.database]\nmigrate_command = \"x\"\n", `cutover.toml:8: apps.blog.database.migrate_command: needs apps.blog.database.url: the command gets it in $DATABASE_URL, and the schema preview reads the database it changes`},
		{"logs_max_total", multiBase + "log_max_size = 1000000\nlogs_max_total = 1000000\n", `cutover.toml:8: apps.blog.logs_max_total: must be at least twice apps.blog.log_max_size (2000000 bytes: a log and its rotated .1), got 1000000`},
		{"typo near a sub-table's key", multiBase + "interval = \"1s\"\n", `cutover.toml:7: apps.blog.interval: unknown key; did you mean "apps.blog.health.interval"?`},
		{
			"nothing close in an app",
			multiBase + "colour = 1\n",
			`cutover.toml:7: apps.blog.colour: unknown key; the keys allowed in [apps.blog] are name, command, instances, env, stop_signal, stop_timeout, env_file, log_max_size, logs_max_total, boot_nice, tls_cert, tls_key, redirect_https, hsts, upstream_protocol, health, tcp, hosts, default, deploy, release, database`,
		},
		// Hosts.
		{"hosts a string", multiBase + "hosts = \"a.com\"\n", `cutover.toml:7: apps.blog.hosts: must be an array of strings such as ["a", "b"], got the string "a.com"`},
		{"default a string", "[apps.shop]\ncommand = \"x\"\ndefault = \"yes\"\n", `cutover.toml:3: apps.shop.default: must be true or false, got the string "yes"`},
		{"host with a port", multiBase + "hosts = [\"blog.com:443\"]\n", `cutover.toml:7: apps.blog.hosts: entry 1 ("blog.com:443") must be a host name without a port (the proxy routes by name and ignores the port)`},
		{"wildcard inside", multiBase + "hosts = [\"a.*.com\"]\n", `cutover.toml:7: apps.blog.hosts: entry 1 ("a.*.com") may hold a wildcard only as its whole first label, as in "*.example.com"`},
		{"wildcard in a label", multiBase + "hosts = [\"*blog.com\"]\n", `cutover.toml:7: apps.blog.hosts: entry 1 ("*blog.com") may hold a wildcard only as its whole first label, as in "*.example.com"`},
		{"wildcard alone", multiBase + "hosts = [\"*\"]\n", `cutover.toml:7: apps.blog.hosts: entry 1 ("*") may hold a wildcard only as its whole first label, as in "*.example.com"`},
		{"trailing dot", multiBase + "hosts = [\"blog.com.\"]\n", `cutover.toml:7: apps.blog.hosts: entry 1 ("blog.com.") must be written without the trailing dot`},
		{
			"not a host name",
			multiBase + "hosts = [\"x.com\", \"a_b.com\", \"\", \"-a.com\", \"http://a.com\"]\n",
			"cutover.toml:7: apps.blog.hosts: entry 2 (\"a_b.com\") must be a host name such as \"shop.example.com\" or \"*.shop.example.com\": labels of letters, digits and '-' (not first or last), 1 to 63 characters each\n" +
				"cutover.toml:7: apps.blog.hosts: entry 3 (\"\") must be a host name such as \"shop.example.com\" or \"*.shop.example.com\": labels of letters, digits and '-' (not first or last), 1 to 63 characters each\n" +
				"cutover.toml:7: apps.blog.hosts: entry 4 (\"-a.com\") must be a host name such as \"shop.example.com\" or \"*.shop.example.com\": labels of letters, digits and '-' (not first or last), 1 to 63 characters each\n" +
				"cutover.toml:7: apps.blog.hosts: entry 5 (\"http://a.com\") must be a host name without a port (the proxy routes by name and ignores the port)",
		},
		{"host twice in an app", multiBase + "hosts = [\"x.com\", \"X.com\"]\n", `cutover.toml:7: apps.blog.hosts: entry 2 ("X.com") repeats entry 1; list each host once`},
		{"host of two apps", multiBase + "hosts = [\"x.com\", \"SHOP.example.com\"]\n", `cutover.toml:7: apps.blog.hosts: entry 2 ("SHOP.example.com") is also a host of app "shop" (line 3); a host goes to one app`},
		{"wildcard of two apps", multiBase + "hosts = [\"*.Shop.example.com\"]\n", `cutover.toml:7: apps.blog.hosts: entry 1 ("*.Shop.example.com") is also a host of app "shop" (line 3); a host goes to one app`},
		// Routing.
		{"two defaults", multiBase + "[apps.admin]\ncommand = \"x\"\ndefault = true\n", `cutover.toml:9: apps.admin.default: app "blog" (line 6) is already the default; only one app may take the hosts no app lists`},
		{
			"unreachable",
			multiBase + "[apps.admin]\ncommand = \"x\"\nhosts = []\n",
			`cutover.toml:7: apps.admin: is unreachable: it has no hosts and is not the default, and the file has 3 apps; add hosts = ["admin.example.com"] (the names it answers to) or default = true`,
		},
		{
			"preview_listen with several apps",
			"[proxy]\npreview_listen = \"127.0.0.1:8081\"\n" + multiBase,
			`cutover.toml:2: proxy.preview_listen: serves one app's preview, and the file has 2 apps (blog, shop); remove it: a preview is reached on proxy.listen with its preview token, for any app`,
		},
		{
			"every app's problems, in line order",
			"[apps.a]\ncommand = \"\"\n[apps.b]\ninstances = 0\n",
			"cutover.toml:1: apps.a: is unreachable: it has no hosts and is not the default, and the file has 2 apps; add hosts = [\"a.example.com\"] (the names it answers to) or default = true\n" +
				"cutover.toml:2: apps.a.command: must not be empty: it starts one instance, which must listen on 127.0.0.1:$PORT\n" +
				"cutover.toml:3: apps.b.command: required key is missing; add command = \"./bin/server --port $PORT\" to [apps.b]\n" +
				"cutover.toml:3: apps.b: is unreachable: it has no hosts and is not the default, and the file has 2 apps; add hosts = [\"b.example.com\"] (the names it answers to) or default = true\n" +
				"cutover.toml:4: apps.b.instances: must be between 1 and 64, got 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("cutover.toml", "/srv/shop", []byte(tt.doc))
			if err == nil {
				t.Fatalf("parse accepted it: %+v", c)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %q\nwant %q", got, tt.want)
			}
			checkAllErrors(t, err)
		})
	}
}

func TestUnit(t *testing.T) {
	multi, err := parse("cutover.toml", "/srv/shop", []byte(multiBase))
	if err != nil {
		t.Fatal(err)
	}
	multi.Path = "/srv/shop/cutover.toml"
	single, err := parse("cutover.toml", "/srv/shop", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	single.Path = "/srv/shop/cutover.toml"

	if single.MultiApp() {
		t.Error("single.MultiApp() = true")
	}
	want := Unit{
		Name:     "shop",
		App:      single.App,
		Deploy:   single.Deploy,
		Release:  single.Release,
		Database: single.Database,
		Default:  true,
		DataDir:  "/srv/shop/.cutover",
		Cookie:   "cutover_release",
	}
	for _, name := range []string{"", "shop"} {
		got, err := single.Unit(name)
		if err != nil {
			t.Fatalf("single.Unit(%q): %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("single.Unit(%q) (-want +got):\n%s", name, diff)
		}
	}
	// The single form's paths are where they always were.
	for _, p := range []struct{ name, unit, config string }{
		{"ReleasesDir", want.ReleasesDir(), single.ReleasesDir()},
		{"LogsDir", want.LogsDir(), single.LogsDir()},
		{"CurrentLink", want.CurrentLink(), single.CurrentLink()},
		{"SharedDir", want.SharedDir(), single.SharedDir()},
		{"StatePath", want.StatePath(), single.StatePath()},
	} {
		if p.unit != p.config {
			t.Errorf("%s: unit %q, config %q", p.name, p.unit, p.config)
		}
	}
	shop, err := multi.Unit("shop")
	if err != nil {
		t.Fatal(err)
	}
	if got := shop.ReleasesDir(); got != "/srv/shop/.cutover/apps/shop/releases" {
		t.Errorf("shop.ReleasesDir() = %q", got)
	}

	for _, tt := range []struct {
		c    *Config
		name string
		want string
	}{
		{multi, "", `/srv/shop/cutover.toml: holds 2 apps (blog, shop); say which one with --app NAME`},
		{multi, "admin", `/srv/shop/cutover.toml: no app "admin"; the apps are blog, shop`},
		{single, "blog", `/srv/shop/cutover.toml: no app "blog"; the apps are shop`},
	} {
		_, err := tt.c.Unit(tt.name)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Unit(%q): got %v, want %q", tt.name, err, tt.want)
		}
		var ce *Error
		if !errors.Is(err, ErrUnknownApp) || !errors.As(err, &ce) {
			t.Errorf("Unit(%q): %T %v is not an *Error wrapping ErrUnknownApp", tt.name, err, err)
		}
	}
}

// TestForUnit: each app's view of a several-apps file is a single-form
// config of its own keys, data dir and cookie; the single form's view is
// the file itself.
func TestForUnit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cutover.toml")
	body := "data_dir = \"state\"\n[proxy]\nlisten = \"127.0.0.1:8080\"\n" +
		"[apps.shop]\ncommand = \"./shop\"\ninstances = 3\nhosts = [\"shop.example.com\"]\n[apps.shop.deploy]\nstrategy = \"canary\"\n" +
		"[apps.blog]\ncommand = \"./blog\"\ndefault = true\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	shop, err := c.ForUnit("shop")
	if err != nil {
		t.Fatal(err)
	}
	if shop.MultiApp() || shop.App.Name != "shop" || shop.App.Command != "./shop" || shop.App.Instances != 3 ||
		shop.Deploy.Strategy != "canary" || shop.DataDir != filepath.Join(dir, "state", "apps", "shop") ||
		shop.Proxy.Cookie != c.Proxy.Cookie+"_shop" || shop.Proxy.Listen != "127.0.0.1:8080" || shop.Path != c.Path {
		t.Errorf("shop's view: %+v", shop)
	}
	if blog, _ := c.ForUnit("blog"); blog.Deploy.Strategy != "bluegreen" || blog.App.Command != "./blog" {
		t.Errorf("blog's view: %+v", blog)
	}
	if _, err := c.ForUnit(""); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("ForUnit(\"\") of two apps: %v", err)
	}
	if _, err := c.ForUnit("nope"); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("ForUnit(nope): %v", err)
	}
	single, err := Load(writeSingle(t))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := single.ForUnit(""); err != nil || v != single {
		t.Errorf("the single form's view: %v %v", v, err)
	}
}

func writeSingle(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cutover.toml")
	if err := os.WriteFile(path, []byte("[app]\nname = \"one\"\ncommand = \"./one\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
