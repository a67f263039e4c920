package config

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// base is the smallest valid file: lines 1 to 3. Cases append from line 4.
const base = "[app]\nname = \"shop\"\ncommand = \"./server --port $PORT\"\n"

// want is what parse returns for base in /srv/shop, changed by edit: the
// defaults, with what validation derives from them.
func want(edit func(c *Config)) *Config {
	c := defaults()
	c.DataDir = "/srv/shop/.cutover"
	c.App.Name = "shop"
	c.App.Command = "./server --port $PORT"
	c.App.Signal = syscall.SIGTERM
	c.Deploy.BatchCount = 1
	c.Deploy.StepPercents = []int{5, 25, 50}
	edit(c)
	return c
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want *Config
	}{
		{"minimal", base, want(func(*Config) {})},
		{
			"every section",
			`data_dir = "/var/lib/cutover"
[app]
name = "shop.v2"
command = "bin/web"
instances = 4
stop_signal = "SIGQUIT"
stop_timeout = "1m30s"
env_file = "config/shop.env"
log_max_size = 4096
boot_nice = 5
tls_cert = "tls/shop.crt"
tls_key = "/etc/shop/key.pem"
redirect_https = false
hsts = "max-age=300; includeSubDomains"
[app.env]
RAILS_ENV = "production"
_X1 = ""
[app.health]
path = "/up"
interval = "250ms"
timeout = "100ms"
healthy_after = 1
unhealthy_after = 5
restart_after = 8
boot_timeout = "2m"
[proxy]
listen = ":80"
hold_timeout = "5s"
drain_timeout = "45s"
drain_pace = "2s"
read_header_timeout = "3s"
idle_timeout = "1m"
response_header_timeout = "90s"
client_body_timeout = "30s"
request_buffering = false
request_buffer_memory = 4096
request_buffer_max = 1048576
max_request_body = 2097152
max_request_line = 4096
max_header_bytes = 32768
preview_listen = "127.0.0.1:8081"
tls_listen = ":443"
sticky = false
cookie = "shop_v"
version_header = "X-Shop-Release"
[deploy]
strategy = "canary"
batch = "50%"
steps = ["10%", "50%", "90%"]
step_time = "1m"
watch = "5m"
max_error_rate = 0.01
confidence = 0.95
min_latency_effect = 0.5
min_error_effect = 0.02
min_requests = 100
before_switch = "bin/smoke $CUTOVER_RELEASE"
after_switch = "bin/notify"
hook_timeout = "30s"
preview_timeout = "1h"
breaking = "hold"
[release]
keep = 2
repo = "git@github.com:shop/shop.git"
test = "make test"
build = "make release"
shared = ["uploads", "log", "tmp/pids"]
[database]
url = "postgres://app:p$ss@db/shop?sslmode=disable&x=${PGX}"
dir = "db/migrate"
table = "public.schema_versions"
format = "flyway"
contract = "auto"
lock_timeout = "2s"
statement_timeout = "0s"
migrate_command = "bin/rails db:migrate"
contract_command = "bin/rails db:contract"
url_env = "SHOP_DB"
command_timeout = "1h"
preview = "off"
preview_data = ["public.my_versions"]
migrate_lock_timeout = "10s"
`,
			want(func(c *Config) {
				c.DataDir = "/var/lib/cutover"
				c.App = App{
					Name: "shop.v2", Command: "bin/web", Instances: 4,
					Env:        map[string]string{"RAILS_ENV": "production", "_X1": ""},
					StopSignal: "SIGQUIT", Signal: syscall.SIGQUIT,
					StopTimeout: Duration{90 * time.Second}, LogMaxSize: 4096, LogsMaxTotal: 1 << 30, BootNice: 5,
					TLSCert: "/srv/shop/tls/shop.crt", TLSKey: "/etc/shop/key.pem", HSTS: "max-age=300; includeSubDomains", UpstreamProtocol: "http1",
					EnvFile: "/srv/shop/config/shop.env",
					Health: Health{
						Path: "/up", Interval: Duration{250 * time.Millisecond},
						Timeout: Duration{100 * time.Millisecond}, HealthyAfter: 1,
						UnhealthyAfter: 5, RestartAfter: 8, BootTimeout: Duration{2 * time.Minute},
					},
				}
				c.Proxy = Proxy{
					Listen: ":80", HoldTimeout: Duration{5 * time.Second},
					DrainTimeout: Duration{45 * time.Second}, DrainPace: Duration{2 * time.Second}, ReadHeaderTimeout: Duration{3 * time.Second},
					IdleTimeout: Duration{time.Minute}, ResponseHeaderTimeout: Duration{90 * time.Second},
					ClientBodyTimeout: Duration{30 * time.Second}, RequestBuffering: false,
					RequestBufferMemory: 4096, RequestBufferMax: 1 << 20, MaxRequestBody: 2 << 20,
					MaxRequestLine: 4096, MaxHeaderBytes: 32768,
					PreviewListen: "127.0.0.1:8081", TLSListen: ":443", HTTP2Server: "cutover", Sticky: false, Cookie: "shop_v",
					VersionHeader: "X-Shop-Release",
				}
				c.Deploy = Deploy{
					Strategy: "canary", Batch: "50%", BatchPercent: 50,
					Steps: []string{"10%", "50%", "90%"}, StepPercents: []int{10, 50, 90},
					StepTime: Duration{time.Minute}, Watch: Duration{5 * time.Minute},
					MaxErrorRate: 0.01, Confidence: 0.95, MinLatencyEffect: 0.5, MinErrorEffect: 0.02, MinRequests: 100,
					BeforeSwitch: "bin/smoke $CUTOVER_RELEASE", AfterSwitch: "bin/notify",
					HookTimeout: Duration{30 * time.Second}, PreviewTimeout: Duration{time.Hour},
					Breaking: "hold",
				}
				c.Release = Release{
					Keep: 2, Repo: "git@github.com:shop/shop.git", Test: "make test",
					Build: "make release", Shared: []string{"uploads", "log", "tmp/pids"},
				}
				c.Database = Database{
					URL: "postgres://app:p$ss@db/shop?sslmode=disable&x=${PGX}",
					Dir: "db/migrate", Table: "public.schema_versions", Format: "flyway",
					Contract: "auto", LockTimeout: Duration{2 * time.Second},
					MigrateLockTimeout: Duration{10 * time.Second},
					MigrateCommand:     "bin/rails db:migrate", ContractCommand: "bin/rails db:contract",
					URLEnv: "SHOP_DB", CommandTimeout: Duration{time.Hour},
					Preview: "off", PreviewData: []string{"public.my_versions"},
				}
			}),
		},
		{"relative data_dir", `data_dir = "../state"` + "\n" + base, want(func(c *Config) { c.DataDir = "/srv/state" })},
		{"lower-case signal", base + "stop_signal = \"hup\"\n", want(func(c *Config) { c.App.StopSignal = "hup"; c.App.Signal = syscall.SIGHUP })},
		{
			"inline and dotted tables",
			"app = { name = \"shop\", command = \"./server --port $PORT\", health.path = \"/h\" }\nproxy.listen = \"127.0.0.1:0\"\n",
			want(func(c *Config) { c.App.Health.Path = "/h"; c.Proxy.Listen = "127.0.0.1:0" }),
		},
		{"sqlite url", base + "[database]\nurl = \"sqlite:///srv/shop/db.sqlite\"\n", want(func(c *Config) { c.Database.URL = "sqlite:///srv/shop/db.sqlite" })},
		{"CRLF line ends", strings.ReplaceAll(base, "\n", "\r\n"), want(func(*Config) {})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse("cutover.toml", "/srv/shop", []byte(tt.doc))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // every error, one a line, as Error() prints them
	}{
		// syntax
		{"unclosed table", "[app\n", `cutover.toml:1: invalid TOML: expected ']' to close table name`},
		{"syntax on a later line", base + "instances = = 2\n", `cutover.toml:4: invalid TOML: unexpected character U+003D '=' at start of value`},
		{"unterminated string", base + "[proxy]\nlisten = \"127.0.0.1:80\n", `cutover.toml:5: invalid TOML: basic strings cannot have new lines`},
		// types
		{"number for a duration", base + "\nstop_timeout = 10\n", `cutover.toml:5: app.stop_timeout: must be a duration string such as "10s", "1m30s" or "250ms", got the integer 10`},
		{"bad duration", base + "[app.health]\ninterval = \"5 seconds\"\n", `cutover.toml:5: app.health.interval: must be a duration string such as "10s", "1m30s" or "250ms" (units ns, us, ms, s, m, h), got "5 seconds"`},
		{"string for an integer", base + "instances = \"2\"\n", `cutover.toml:4: app.instances: must be an integer, got the string "2"`},
		{"float for an integer", base + "instances = 2.5\n", `cutover.toml:4: app.instances: must be an integer, got the float 2.5`},
		{"scalar for a table", "app = 3\n", `cutover.toml:1: app: must be a table, got the integer 3`},
		{"table for a scalar", base + "[app.name]\n", `cutover.toml:4: app.name: must be a string, got a table`},
		{"array of tables", base + "[[proxy]]\n", `cutover.toml:4: proxy: must be a table, got an array of tables`},
		{"non-string env", base + "[app.env]\nDEBUG = true\n", `cutover.toml:5: app.env.DEBUG: must be a string, got the boolean true`},
		{"inline table member", "app = { name = \"a\", command = \"b\", health = { interval = 3 } }\n", `cutover.toml:1: app.health.interval: must be a duration string such as "10s", "1m30s" or "250ms", got the integer 3`},
		{"integer out of range", base + "log_max_size = 99999999999999999999\n", `cutover.toml:4: app.log_max_size: decimal number is too large to fit in a 64-bit signed integer`},
		// unknown keys
		{"typo", base + "instance = 3\n", `cutover.toml:4: app.instance: unknown key; did you mean "app.instances"?`},
		{"wrong case", base + "Name = \"x\"\n", `cutover.toml:4: app.Name: unknown key; did you mean "app.name"?`},
		{"misplaced key", base + "interval = \"1s\"\n", `cutover.toml:4: app.interval: unknown key; did you mean "app.health.interval"?`},
		{"nothing close", base + "colour = \"red\"\n", `cutover.toml:4: app.colour: unknown key; the keys allowed in [app] are name, command, instances, env, stop_signal, stop_timeout, env_file, log_max_size, logs_max_total, boot_nice, tls_cert, tls_key, redirect_https, hsts, upstream_protocol, health, tcp`},
		{"unknown table", base + "[prometheus]\nport = 9090\n", `cutover.toml:4: prometheus: unknown table; the keys allowed at the top level are data_dir, app, proxy, deploy, release, database, tls, apps, metrics, log, dashboard`},
		{"metrics listen not host:port", base + "[metrics]\nlisten = \"9100\"\n", `cutover.toml:5: metrics.listen: must be host:port such as "127.0.0.1:9100", got "9100"`},
		{"dashboard public without token", base + "[dashboard]\nlisten = \"0.0.0.0:9200\"\n", `cutover.toml:4: dashboard.token: must be set when dashboard.listen ("0.0.0.0:9200") is not a loopback address: the dashboard controls deploys; set a random token of 16 characters or more (openssl rand -hex 16), or listen on 127.0.0.1`},
		{"dashboard token short", base + "[dashboard]\nlisten = \"127.0.0.1:9200\"\ntoken = \"abc\"\n", `cutover.toml:6: dashboard.token: must be at least 16 characters, got 3: make one with openssl rand -hex 16`},
		{"dashboard on the metrics port", base + "[metrics]\nlisten = \"127.0.0.1:9100\"\n[dashboard]\nlisten = \"127.0.0.1:9100\"\n", `cutover.toml:7: dashboard.listen: must differ from metrics.listen ("127.0.0.1:9100")`},
		{"metrics on the proxy's port", base + "[metrics]\nlisten = \"127.0.0.1:8080\"\n", `cutover.toml:5: metrics.listen: must differ from proxy.listen ("127.0.0.1:8080"): /metrics is served on a port of its own`},
		{"access format", base + "[log]\naccess = \"stdout\"\naccess_format = \"common\"\n", `cutover.toml:6: log.access_format: must be "json" or "combined", got "common"`},
		{"unknown dotted", "aap.name = \"x\"\n" + base, `cutover.toml:1: aap: unknown key; did you mean "app"?`},
		{"duplicate key", base + "name = \"again\"\n", `cutover.toml:4: app.name: is already set on line 2; set each key once`},
		{"duplicate table", base + "[app]\n", `cutover.toml:4: app: table [app] is already defined on line 1; write its keys under one header`},
		// missing required keys
		{"missing name", "[app]\ncommand = \"x\"\n", `cutover.toml:1: app.name: required key is missing; add name = "myapp" to [app]`},
		{"missing app table", "[proxy]\n", "cutover.toml: app.name: required key is missing; add name = \"myapp\" to [app]\n" +
			"cutover.toml: app.command: required key is missing; add command = \"./bin/server --port $PORT\" to [app]"},
		// values
		{"zero instances", base + "instances = 0\n", `cutover.toml:4: app.instances: must be between 1 and 64, got 0`},
		{"too many instances", base + "instances = 65\n", `cutover.toml:4: app.instances: must be between 1 and 64, got 65`},
		{"empty data_dir", "data_dir = \"\"\n" + base, `cutover.toml:1: data_dir: must not be empty; the default is ".cutover" beside the config file`},
		{"bad name", "[app]\nname = \"my app\"\ncommand = \"x\"\n", `cutover.toml:2: app.name: must be letters, digits, '-', '_' and '.', got "my app"`},
		{"blank command", "[app]\nname = \"a\"\ncommand = \"  \"\n", `cutover.toml:3: app.command: must not be empty: it starts one instance, which must listen on 127.0.0.1:$PORT`},
		{"PORT in env", base + "[app.env]\nPORT = \"80\"\n", `cutover.toml:5: app.env.PORT: PORT is set by cutover for each instance and cannot be set here`},
		{"bad env name", base + "[app.env]\n\"A-B\" = \"1\"\n", `cutover.toml:5: app.env.A-B: must be a variable name of letters, digits and '_', not starting with a digit`},
		{"bad signal", base + "stop_signal = \"KILL\"\n", `cutover.toml:4: app.stop_signal: must be one of "TERM", "INT", "QUIT", "HUP", "USR1", "USR2" (with or without "SIG"), got "KILL"`},
		{"zero duration", base + "stop_timeout = \"0s\"\n", `cutover.toml:4: app.stop_timeout: must be a positive duration such as "10s", got "0s"`},
		{"negative duration", base + "[proxy]\ndrain_timeout = \"-1s\"\n", `cutover.toml:5: proxy.drain_timeout: must be a positive duration such as "10s", got "-1s"`},
		{"negative drain_pace", base + "[proxy]\ndrain_pace = \"-1s\"\n", `cutover.toml:5: proxy.drain_pace: must not be negative (0 closes everything at once), got "-1s"`},
		{"small log", base + "log_max_size = 100\n", `cutover.toml:4: app.log_max_size: must be at least 4096 bytes, got 100`},
		{"small logs total", base + "log_max_size = 1048576\nlogs_max_total = 1048576\n", `cutover.toml:5: app.logs_max_total: must be at least twice app.log_max_size (2097152 bytes: a log and its rotated .1), got 1048576`},
		{"boot_nice", base + "boot_nice = 20\n", `cutover.toml:4: app.boot_nice: must be 0 (off) to 19, got 20`},
		{"negative boot_nice", base + "boot_nice = -5\n", `cutover.toml:4: app.boot_nice: must be 0 (off) to 19, got -5`},
		{"health path", base + "[app.health]\npath = \"up\"\n", `cutover.toml:5: app.health.path: must be a URL path starting with "/", got "up"`},
		{"health path with a space", base + "[app.health]\npath = \"/up now\"\n", `cutover.toml:5: app.health.path: must hold no spaces or control characters (write a space as %20), got "/up now"`},
		{"healthy_after", base + "[app.health]\nhealthy_after = 0\n", `cutover.toml:5: app.health.healthy_after: must be at least 1, got 0`},
		{"restart_after", base + "[app.health]\nrestart_after = 2\n", `cutover.toml:5: app.health.restart_after: must be 0 (never restart) or at least unhealthy_after (3), so that an instance leaves rotation before it is killed; got 2`},
		{"listen without port", base + "[proxy]\nlisten = \"localhost\"\n", `cutover.toml:5: proxy.listen: must be host:port such as "127.0.0.1:8080" or ":80", got "localhost"`},
		{"listen port", base + "[proxy]\nlisten = \"127.0.0.1:http\"\n", `cutover.toml:5: proxy.listen: port must be a number from 0 to 65535 (0 picks a free one), got "http"`},
		{"strategy", base + "[deploy]\nstrategy = \"blue-green\"\n", `cutover.toml:5: deploy.strategy: must be "bluegreen", "rolling", "canary" or "stop-first", got "blue-green"`},
		{"keep", base + "[release]\nkeep = 1\n", `cutover.toml:5: release.keep: must be at least 2 (the live release and the rollback target), got 1`},
		{"url scheme", base + "[database]\nurl = \"mysql://u:secret@h/db\"\n", `cutover.toml:5: database.url: must start with "postgres://", "postgresql://" or "sqlite://" (or be empty for no database), got "mysql://u:xxxxx@h/db"`},
		{"url variable", base + "[database]\nurl = \"postgres://${PG\"\n", `cutover.toml:5: database.url: "${PG" has no closing '}'`},
		{"url variable name", base + "[database]\nurl = \"${1A}\"\n", `cutover.toml:5: database.url: ${1A} is not a valid variable name (letters, digits and '_')`},
		{"format", base + "[database]\nformat = \"liquibase\"\n", `cutover.toml:5: database.format: must be one of "auto", "native", "golang-migrate", "goose", "flyway", got "liquibase"`},
		{"contract", base + "[database]\ncontract = \"later\"\n", `cutover.toml:5: database.contract: must be "auto" or "manual", got "later"`},
		{"table", base + "[database]\ntable = \"my-table\"\n", `cutover.toml:5: database.table: must be a table name (letters, digits and '_', optionally schema.table, at most 63 each), got "my-table"`},
		{"statement_timeout", base + "[database]\nstatement_timeout = \"-5s\"\n", `cutover.toml:5: database.statement_timeout: must not be negative (0 means no limit), got -5s`},
		{
			"several, in line order",
			"[app]\ninstances = 0\nname = \"a b\"\ncommand = \"x\"\n[release]\nkeep = 0\n",
			"cutover.toml:2: app.instances: must be between 1 and 64, got 0\n" +
				"cutover.toml:3: app.name: must be letters, digits, '-', '_' and '.', got \"a b\"\n" +
				"cutover.toml:6: release.keep: must be at least 2 (the live release and the rollback target), got 0",
		},
		{
			"several unknown keys",
			base + "instance = 1\n[bogus]\n[app.health]\nintervall = \"1s\"\n",
			"cutover.toml:4: app.instance: unknown key; did you mean \"app.instances\"?\n" +
				"cutover.toml:5: bogus: unknown table; the keys allowed at the top level are data_dir, app, proxy, deploy, release, database, tls, apps, metrics, log, dashboard\n" +
				"cutover.toml:7: app.health.intervall: unknown key; did you mean \"app.health.interval\"?",
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

// checkAllErrors fails unless err is an *Error or a join of only *Errors.
func checkAllErrors(t *testing.T, err error) {
	t.Helper()
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			checkAllErrors(t, e)
		}
		return
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Errorf("got %T %q, want a *config.Error", err, err)
	}
}

func TestErrorFields(t *testing.T) {
	_, err := parse("conf/cutover.toml", "/srv", []byte(base+"[app.health]\ninterval = 1\n"))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %T, want *Error", err)
	}
	got := Error{File: ce.File, Line: ce.Line, Field: ce.Field}
	want := Error{File: "conf/cutover.toml", Line: 5, Field: "app.health.interval"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cutover.toml")
	if err := os.WriteFile(path, []byte("data_dir = \"state\"\n"+base), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	c, err := Load("cutover.toml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// t.TempDir may sit behind a symlink; Load keeps the path it was given,
	// made absolute, without resolving links.
	checks := []struct{ name, got, want string }{
		{"Path", c.Path, path},
		{"DataDir", c.DataDir, filepath.Join(dir, "state")},
		{"SocketPath", c.SocketPath(), filepath.Join(dir, "state", "cutover.sock")},
		{"StatePath", c.StatePath(), filepath.Join(dir, "state", "state.db")},
		{"ReleasesDir", c.ReleasesDir(), filepath.Join(dir, "state", "releases")},
		{"LogsDir", c.LogsDir(), filepath.Join(dir, "state", "logs")},
		{"CurrentLink", c.CurrentLink(), filepath.Join(dir, "state", "current")},
		{"SharedDir", c.SharedDir(), filepath.Join(dir, "state", "shared")},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}
}

// TestParsePaths checks that env_file and a local release.repo are made
// absolute against the config file's directory, like data_dir, while a
// repository URL is passed to git as written.
func TestParsePaths(t *testing.T) {
	tests := []struct {
		name, doc string
		field     func(*Config) string
		want      string
	}{
		{"env_file relative", base + "env_file = \".env\"\n", envFile, "/srv/shop/.env"},
		{"env_file parent", base + "env_file = \"../secrets/shop.env\"\n", envFile, "/srv/secrets/shop.env"},
		{"env_file absolute", base + "env_file = \"/etc/shop/env\"\n", envFile, "/etc/shop/env"},
		{"env_file unclean", base + "env_file = \"/etc//shop/./env\"\n", envFile, "/etc/shop/env"},
		{"env_file unset", base, envFile, ""},
		{"repo relative", base + "[release]\nrepo = \"../shop.git\"\n", repo, "/srv/shop.git"},
		{"repo dot", base + "[release]\nrepo = \".\"\n", repo, "/srv/shop"},
		{"repo absolute", base + "[release]\nrepo = \"/git/shop\"\n", repo, "/git/shop"},
		{"repo with colon after slash", base + "[release]\nrepo = \"git/a:b\"\n", repo, "/srv/shop/git/a:b"},
		{"repo https", base + "[release]\nrepo = \"https://github.com/shop/shop.git\"\n", repo, "https://github.com/shop/shop.git"},
		{"repo ssh url", base + "[release]\nrepo = \"ssh://git@host:2222/x.git\"\n", repo, "ssh://git@host:2222/x.git"},
		{"repo file url", base + "[release]\nrepo = \"file:///git/shop\"\n", repo, "file:///git/shop"},
		{"repo scp-like", base + "[release]\nrepo = \"git@host:x.git\"\n", repo, "git@host:x.git"},
		{"repo host:path", base + "[release]\nrepo = \"host:shop\"\n", repo, "host:shop"},
		{"repo unset", base, repo, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("cutover.toml", "/srv/shop", []byte(tt.doc))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := tt.field(c); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func envFile(c *Config) string { return c.App.EnvFile }
func repo(c *Config) string    { return c.Release.Repo }

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(path)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false for %q", err)
	}
	want := path + ": config file does not exist; create one with `cutover init`"
	if got := err.Error(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"TERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "quit": syscall.SIGQUIT,
		"sighup": syscall.SIGHUP, "USR1": syscall.SIGUSR1, " SIGUSR2 ": syscall.SIGUSR2,
	} {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KILL", "SIGSTOP", "15"} {
		if _, err := ParseSignal(in); err == nil {
			t.Errorf("ParseSignal(%q) accepted it", in)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(Example("shop")))
	f.Add([]byte(base))
	f.Add([]byte(base + "[app.env]\nA = \"1\"\n[database]\nurl = \"postgres://${X}\"\n"))
	f.Add([]byte("app = { name = \"a\", command = \"b\", health = { interval = 3 } }\n"))
	f.Add([]byte("[app\n"))
	f.Add([]byte("a.b.c = [1, {x = 2}]\n[[d]]\n"))
	f.Add([]byte("[app]\nname = '''\nx'''\n"))
	f.Add([]byte(base + "env_file = \"../x.env\"\n[proxy]\npreview_listen = \":8081\"\nsticky = false\ncookie = \"v\"\nversion_header = \"X-V\"\n"))
	f.Add([]byte(base + "[deploy]\nstrategy = \"rolling\"\nbatch = \"50%\"\nwatch = \"1m\"\n"))
	f.Add([]byte(base + "[deploy]\nstrategy = \"canary\"\nbatch = 3\nsteps = [\"5%\", \" 50 % \"]\nmax_error_rate = 0.5\nconfidence = 0.9\nmin_latency_effect = 1.5\nmin_error_effect = 0\nmin_requests = 1\n"))
	f.Add([]byte(base + "[deploy]\nsteps = []\nbatch = true\n"))
	f.Add([]byte(base + "[deploy]\nmax_error_rate = nan\n"))
	f.Add([]byte(base + "[deploy]\nmin_latency_effect = inf\nconfidence = 1e308\nmax_p99_ratio = 2\n"))
	f.Add([]byte(base + "[deploy]\nbefore_switch = \"x\"\nafter_switch = \"y\"\nhook_timeout = \"1s\"\npreview_timeout = \"1h\"\nstep_time = \"1s\"\n"))
	f.Add([]byte(base + "[release]\nrepo = \"git@h:x.git\"\ntest = \"t\"\nbuild = \"b\"\nshared = [\"a\", \"a/b\", \"../c\", 1]\n"))
	f.Add([]byte(ExampleApps("shop", []string{"shop.example.com"})))
	f.Add([]byte(multiBase + "[apps.\"a.b\"]\ncommand = \"x\"\nhosts = [\"*.A.b\", \"x:1\"]\n[apps.a_b.deploy]\nbatch = \"5%\"\n"))
	f.Add([]byte("[apps]\nx = { command = \"y\", default = true, release = { repo = \"r\" } }\n[proxy]\npreview_listen = \":1\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse("cutover.toml", "/srv", data)
		if err != nil {
			checkAllErrors(t, err)
			return
		}
		if !filepath.IsAbs(c.DataDir) {
			t.Errorf("data_dir %q is not absolute", c.DataDir)
		}
		units := c.Units()
		if c.MultiApp() != (c.App.Name == "") || len(units) == 0 {
			t.Errorf("accepted config is in neither form, or both: %+v", c)
		}
		hosts, defaults := map[string]bool{}, 0
		for _, u := range units {
			checkUnit(t, c, &u)
			for _, h := range u.Hosts {
				if hosts[h] {
					t.Errorf("host %q of two apps", h)
				}
				hosts[h] = true
			}
			if u.Default {
				defaults++
			}
		}
		if defaults > 1 || len(units) > 1 && c.Proxy.PreviewListen != "" {
			t.Errorf("%d default apps, preview_listen %q with %d apps", defaults, c.Proxy.PreviewListen, len(units))
		}
	})
}

// checkUnit fails unless u holds what an accepted app promises, in either
// form.
func checkUnit(t *testing.T, c *Config, u *Unit) {
	t.Helper()
	if u.App.Signal == 0 || u.Name == "" || u.App.Name != u.Name || !isCookieName(u.Cookie) {
		t.Errorf("accepted app is incomplete: %+v", u)
	}
	if rel, err := filepath.Rel(c.DataDir, u.DataDir); err != nil || !filepath.IsLocal(rel) && rel != "." {
		t.Errorf("app %q: data dir %q is not inside %q", u.Name, u.DataDir, c.DataDir)
	}
	if u.App.EnvFile != "" && !filepath.IsAbs(u.App.EnvFile) {
		t.Errorf("env_file %q is not absolute", u.App.EnvFile)
	}
	if u.Release.Repo != "" && isLocalPath(u.Release.Repo) && !filepath.IsAbs(u.Release.Repo) {
		t.Errorf("local repo %q is not absolute", u.Release.Repo)
	}
	for _, p := range u.Release.Shared {
		if !filepath.IsLocal(p) || p != filepath.Clean(p) {
			t.Errorf("shared path %q is not a clean path inside the release", p)
		}
	}
	for _, h := range u.Hosts {
		if host, problem := checkHost(h); problem != "" || host != h {
			t.Errorf("app %q: host %q accepted: %s", u.Name, h, problem)
		}
	}
	checkDeploy(t, &u.Deploy)
}

// checkDeploy fails unless d holds what an accepted [deploy] promises:
// Batch parsed into exactly one of BatchCount and BatchPercent, steps
// increasing percentages below 100 (at least one for canary), and bounds
// the canary judge can use.
func checkDeploy(t *testing.T, d *Deploy) {
	t.Helper()
	if (d.BatchCount == 0) == (d.BatchPercent == 0) || d.BatchCount < 0 || d.BatchCount > 64 || d.BatchPercent < 0 || d.BatchPercent > 100 {
		t.Errorf("batch %v parsed to count %d, percent %d", d.Batch, d.BatchCount, d.BatchPercent)
	}
	if len(d.StepPercents) != len(d.Steps) || d.Strategy == "canary" && len(d.StepPercents) == 0 {
		t.Errorf("steps %q parsed to %v", d.Steps, d.StepPercents)
	}
	last := 0
	for _, p := range d.StepPercents {
		if p <= last || p >= 100 {
			t.Errorf("steps %q parsed to %v", d.Steps, d.StepPercents)
			break
		}
		last = p
	}
	if !(d.MaxErrorRate >= 0 && d.MaxErrorRate <= 1) || !(d.Confidence > 0.5 && d.Confidence < 1) ||
		!(d.MinLatencyEffect >= 0) || math.IsInf(d.MinLatencyEffect, 0) ||
		!(d.MinErrorEffect >= 0 && d.MinErrorEffect <= 1) || d.MinRequests < 1 {
		t.Errorf("bounds out of range: %+v", d)
	}
}

// A log_max_size above half the default logs_max_total, set before
// logs_max_total existed, still loads: the default grows to fit it.
func TestLogsMaxTotalDefaultFitsLogMaxSize(t *testing.T) {
	c, err := parse("cutover.toml", "/srv", []byte(base+"log_max_size = 1073741824\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.App.LogsMaxTotal, int64(2<<30); got != want {
		t.Errorf("logs_max_total = %d, want %d", got, want)
	}
}
