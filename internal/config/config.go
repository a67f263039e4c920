// Package config reads cutover.toml: it parses the file, fills defaults,
// resolves paths relative to the file, and validates every field. Errors
// name the file, the line and the field, and say what is allowed.
//
// The file has two forms. The single-app form describes one app in [app],
// [deploy], [release] and [database]; the multi-app form has one
// [apps.NAME] table per app, each with the same keys plus hosts and
// default, and its own health, env, deploy, release and database tables,
// all served by one daemon on one proxy port and routed by Host. A file
// holds one form or the other; data_dir and [proxy] are shared. Units
// gives every app's configuration in one shape, whatever the form: new
// code should use it rather than Config.App and its siblings, which only
// the single-app form fills.
//
// The structs below are the reference documentation of the file format:
// each field states its TOML key, unit and default. docs/config.md mirrors
// them for operators.
package config

import (
	"path/filepath"
	"syscall"
	"time"
)

// Config is a whole cutover.toml after Load: defaults filled, paths absolute,
// validated.
type Config struct {
	// Path is the absolute path of the file this was loaded from.
	Path string `toml:"-"`

	// DataDir (key data_dir) holds cutover.sock and, in the single-app
	// form, the app's releases/, logs/, state.db…; in the multi-app form
	// each app's are in <data_dir>/apps/<NAME> (see Unit.DataDir).
	// Relative to the config file's directory. Default: ".cutover" beside
	// the config file.
	DataDir string `toml:"data_dir"`

	// App, Deploy, Release and Database are the single-app form's tables
	// [app], [deploy], [release] and [database]. In the multi-app form
	// they are zero: each app's are in Apps, and Units gives every app's
	// in one shape for both forms.
	App      App      `toml:"app"`
	Proxy    Proxy    `toml:"proxy"`
	Deploy   Deploy   `toml:"deploy"`
	Release  Release  `toml:"release"`
	Database Database `toml:"database"`

	// TLS is [tls]: certificates from ACME, for every app's host names.
	TLS TLS `toml:"tls"`

	// Apps (tables [apps.NAME]) is the multi-app form: one entry per app,
	// keyed by its name, all served by one daemon on proxy.listen and
	// routed by Host. A file holds either Apps or the single-app form's
	// [app], [deploy], [release] and [database], never both. Nil in the
	// single-app form.
	Apps map[string]*AppEntry `toml:"apps"`

	// Metrics and Log are the tables [metrics] and [log] (observe.go),
	// shared by every app.
	Metrics Metrics `toml:"metrics"`
	Log     Log     `toml:"log"`

	// Dashboard is the table [dashboard] (observe.go): the live page the
	// daemon serves, shared by every app.
	Dashboard Dashboard `toml:"dashboard"`

	// DaemonDir is, in a unit's view (ForUnit), the daemon's data_dir,
	// where its socket is; "" otherwise. Set by ForUnit.
	DaemonDir string `toml:"-"`
}

// AppEntry is one [apps.NAME] table of the multi-app form: every key of
// [app] (its name is NAME: a name key is optional and must equal it), the
// app's Host names, and its own [apps.NAME.health], [apps.NAME.env],
// [apps.NAME.deploy], [apps.NAME.release] and [apps.NAME.database] with
// the same keys and defaults as the single-app form's tables.
type AppEntry struct {
	App

	// Hosts (key hosts) are the Host names whose requests go to this app:
	// exact names ("shop.example.com") or wildcards of one or more leading
	// labels ("*.shop.example.com": any name ending in .shop.example.com,
	// not shop.example.com itself). Written without a port (the port of a
	// request is ignored) and without a trailing dot; Load lower-cases
	// them. An exact name wins over a wildcard, a longer wildcard over a
	// shorter one. No host may belong to two apps. Default [].
	Hosts []string `toml:"hosts"`

	// Default (key default) makes this app take requests for hosts no app
	// lists; without a default app they get 404. At most one app may set
	// it. With several apps, an app with no hosts must set it, or no
	// request reaches it; an only app with no hosts is the default by
	// itself. Default false.
	Default bool `toml:"default"`

	Deploy   Deploy   `toml:"deploy"`
	Release  Release  `toml:"release"`
	Database Database `toml:"database"`
}

// App describes the application cutover runs.
type App struct {
	// Name (key name) identifies the app in status and logs. Required in
	// [app]; letters, digits, '-', '_' and '.'. In [apps.NAME] it is NAME
	// (the key may be left out, or must equal NAME), and "." and ".." are
	// refused since it names the app's data directory.
	Name string `toml:"name"`

	// Command (key command) starts one instance. It runs with /bin/sh -c
	// (prefixed by exec) in the release directory, and must listen on
	// 127.0.0.1:$PORT. Required.
	Command string `toml:"command"`

	// Instances (key instances) is how many instances serve. Default 2;
	// 1 to 64.
	Instances int `toml:"instances"`

	// Env (table [app.env], or [apps.NAME.env]) is added to the environment of every instance,
	// over cutover's own environment. PORT is set by cutover and cannot be
	// set here.
	Env map[string]string `toml:"env"`

	// StopSignal (key stop_signal) asks an instance to stop gracefully.
	// One of "TERM", "INT", "QUIT", "HUP", "USR1", "USR2" (with or without
	// "SIG"). Default "TERM".
	StopSignal string `toml:"stop_signal"`

	// Signal is StopSignal parsed. Set by Load.
	Signal syscall.Signal `toml:"-"`

	// StopTimeout (key stop_timeout) is how long an instance has to exit
	// after StopSignal before its whole process group is killed.
	// Duration string ("10s"). Default 10s.
	StopTimeout Duration `toml:"stop_timeout"`

	// EnvFile (key env_file) is a file of KEY=VALUE lines (# comments,
	// optional "export " prefix, values optionally quoted) added to the
	// environment of every instance, after [app.env]. Relative to the config
	// file. It is read at deploy time and snapshotted with the release, so a
	// rollback runs with the environment the release had. Default empty.
	EnvFile string `toml:"env_file"`

	// LogMaxSize (key log_max_size) caps each instance log file, in bytes,
	// as it is written: before a write that would take the file past it,
	// the file is rotated once (renamed to .1, replacing the older one).
	// Default 10485760 (10 MiB); at least 4096.
	LogMaxSize int64 `toml:"log_max_size"`

	// LogsMaxTotal (key logs_max_total) caps all of <data_dir>/logs, in
	// bytes: past it, the log files written least recently (rotated .1
	// files, logs of stopped instances) are removed, checked every 30
	// seconds and after each deploy. The files running instances write to
	// are never removed. Default 1073741824 (1 GiB), or twice log_max_size
	// if that is more; at least twice log_max_size.
	LogsMaxTotal int64 `toml:"logs_max_total"`

	// BootNice (key boot_nice) is how much lower than the daemon's the
	// CPU priority (nice value) of a starting instance is, until its
	// health check first passes: a booting release then takes the CPU the
	// serving one leaves, and serving requests stay fast. 0 boots at the
	// daemon's priority. Default 10; 0 to 19.
	BootNice int `toml:"boot_nice"`

	// TLSCert and TLSKey (keys tls_cert and tls_key) are the PEM files of
	// the app's certificate (its chain, leaf first) and private key,
	// served on proxy.tls_listen for the app's hosts; in the single-app
	// form, and for an only app without hosts, for every name (it is the
	// default certificate). Relative to the config file. Read when the
	// daemon starts (a pair that does not load stops it, naming the file)
	// and again within 5 seconds of a change on disk, without a restart; a
	// changed pair that does not load keeps the certificate served
	// before. Both or neither; they need proxy.tls_listen. Default empty.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`

	// RedirectHTTPS (key redirect_https) answers the app's requests on
	// proxy.listen for a host with a certificate (from tls_cert, or any
	// other source of the TLS listener) with 308 to the same URL in https
	// — but for /.well-known/acme-challenge/. Only with proxy.tls_listen.
	// Default true.
	RedirectHTTPS bool `toml:"redirect_https"`

	// HSTS (key hsts) is the Strict-Transport-Security header sent on the
	// app's responses over TLS, as its value: "max-age=SECONDS" with
	// optional "; includeSubDomains" and "; preload". Browsers then use
	// https only for max-age seconds: start small. Needs proxy.tls_listen.
	// Default empty (no header).
	HSTS string `toml:"hsts"`

	// UpstreamProtocol (key upstream_protocol) is how the proxy speaks to
	// the app's instances: UpstreamHTTP1 ("http1", HTTP/1.1 keep-alive) or
	// UpstreamH2C ("h2c", HTTP/2 without TLS, with prior knowledge: a gRPC
	// server, which speaks HTTP/2 only). gRPC clients then come over
	// proxy.tls_listen, which speaks HTTP/2. Default "http1".
	UpstreamProtocol string `toml:"upstream_protocol"`

	Health Health `toml:"health"`

	// TCP (tables [[app.tcp]], or [[apps.NAME.tcp]]) are the app's TCP
	// ports besides HTTP: each is a listener of the daemon whose
	// connections go, byte for byte, to a port of the app's instances.
	// Default none.
	TCP []TCP `toml:"tcp"`
}

// Health configures the health check of instances: an HTTP GET, or the
// gRPC health protocol (GRPC).
type Health struct {
	// Path (key path) is requested with GET on each instance; a 2xx answer
	// is healthy (a redirect is not followed, and fails). Default "/".
	// Not used with GRPC.
	Path string `toml:"path"`

	// GRPC (key grpc) checks instances with the standard gRPC health
	// protocol (grpc.health.v1.Health/Check over HTTP/2 cleartext; SERVING
	// passes) instead of a GET of Path: a gRPC server does not answer
	// HTTP/1.1. Needs upstream_protocol = "h2c". Default false.
	GRPC bool `toml:"grpc"`

	// GRPCService (key grpc_service) is the service name the gRPC check
	// asks about; "" asks about the server as a whole. Only with GRPC.
	// Default "".
	GRPCService string `toml:"grpc_service"`

	// Interval (key interval) between checks of one instance. Default 1s.
	Interval Duration `toml:"interval"`

	// Timeout (key timeout) of one check. Default 2s; at most Interval is
	// not required.
	Timeout Duration `toml:"timeout"`

	// HealthyAfter (key healthy_after) consecutive passes make an instance
	// healthy (and a booting one ready). Default 2; at least 1.
	HealthyAfter int `toml:"healthy_after"`

	// UnhealthyAfter (key unhealthy_after) consecutive failures take an
	// instance out of rotation. Default 3; at least 1.
	UnhealthyAfter int `toml:"unhealthy_after"`

	// RestartAfter (key restart_after) consecutive failures of an instance
	// that was healthy once kill its whole process group and restart it,
	// as a liveness probe does: a hung instance (deadlocked, stopped) is
	// otherwise out of rotation forever, and the requests it holds wait
	// for proxy.response_header_timeout. Larger than unhealthy_after, so a
	// slow instance under a load spike leaves rotation, and recovers there,
	// before it is killed. A booting instance is never killed for failing
	// (boot_timeout bounds a boot). Counted in checks, each taking up to
	// timeout: at the defaults a hung instance is killed about 20s after
	// it stops answering. 0 = never restart. Default 10; 0 or at least
	// unhealthy_after.
	RestartAfter int `toml:"restart_after"`

	// BootTimeout (key boot_timeout) is how long a new instance has to
	// become healthy during a deploy before the deploy aborts, and how long
	// an instance restarted after a crash or a hang has before it is killed
	// and restarted again. Default 60s.
	BootTimeout Duration `toml:"boot_timeout"`
}

// Deploy configures how a deploy shifts traffic.
type Deploy struct {
	// Strategy (key strategy): "bluegreen" (default: boot all new
	// instances, switch at once), "rolling" (batches of instances),
	// "canary" (weighted steps judged by the proxy's own measurements) or
	// "stop-first" (for an app that cannot run two copies at once: the
	// proxy holds requests while the old release stops and the new one
	// boots; rollbacks do the same; no watch, no preview).
	Strategy string `toml:"strategy"`

	// Batch (key batch) is, for "rolling", how many instances move per
	// step: an integer (1 = Unicorn's one-for-one) or a percentage string
	// such as "50%". Default 1.
	Batch any `toml:"batch"`

	// BatchCount, BatchPercent hold Batch parsed: exactly one is non-zero.
	// Set by Load.
	BatchCount   int `toml:"-"`
	BatchPercent int `toml:"-"`

	// Steps (key steps) are, for "canary", the shares of traffic the new
	// release gets, in order, before 100%. Default ["5%", "25%", "50%"].
	Steps []string `toml:"steps"`

	// StepPercents holds Steps parsed (1..99, increasing). Set by Load.
	StepPercents []int `toml:"-"`

	// StepTime (key step_time) is how long each canary step lasts before
	// it is judged. Default 30s.
	StepTime Duration `toml:"step_time"`

	// Watch (key watch) keeps the old release's instances running this long
	// after the switch; if the new release's error rate breaks the bounds
	// meanwhile, traffic goes back at once. Default 0 (no watch).
	Watch Duration `toml:"watch"`

	// MaxErrorRate (key max_error_rate) is the highest share (0..1) of
	// failed requests (5xx or connection errors) the new release may show
	// in a canary step or during the watch, whatever the old release's: it
	// fails when its error rate is above this at deploy.confidence (the
	// whole confidence interval above it). 0 turns it off. Default 0.05.
	MaxErrorRate float64 `toml:"max_error_rate"`

	// Confidence (key confidence) is the confidence level of the canary
	// judge's intervals: a canary step fails only when the interval of
	// the difference with the old release lies wholly beyond the minimum
	// effect. Above 0.5 and below 1. Default 0.99.
	Confidence float64 `toml:"confidence"`

	// MinLatencyEffect (key min_latency_effect) is the smallest slowdown
	// of the new release worth going back for, as a share of the old
	// release's latency: 0.2 fails a step when the new release's typical
	// request is at least 20% slower (Hodges–Lehmann ratio of the two
	// releases' latencies, at deploy.confidence). 0 turns the latency
	// test off. Finite, at least 0. Default 0.2.
	MinLatencyEffect float64 `toml:"min_latency_effect"`

	// MinErrorEffect (key min_error_effect) is the smallest rise of the
	// error rate over the old release's worth going back for, in points
	// of share: 0.01 fails a step when the new release fails at least one
	// percentage point more often, at deploy.confidence. 0 turns the test
	// off. 0 to 1. Default 0.01.
	MinErrorEffect float64 `toml:"min_error_effect"`

	// MinRequests (key min_requests) is how many requests a release must
	// have served in a window before it is judged; a step that ends with
	// fewer waits (up to another step_time) for more. Default 20.
	MinRequests int `toml:"min_requests"`

	// BeforeSwitch (key before_switch) is a shell command run in the new
	// release's directory after it booted and before traffic moves, with
	// CUTOVER_RELEASE, CUTOVER_RELEASE_DIR and CUTOVER_PREVIOUS_RELEASE in
	// its environment. A failure aborts the deploy like a failed boot.
	// Default empty.
	BeforeSwitch string `toml:"before_switch"`

	// AfterSwitch (key after_switch) is a shell command run like
	// before_switch once traffic has moved; a failure is reported but does
	// not undo the deploy. Default empty.
	AfterSwitch string `toml:"after_switch"`

	// HookTimeout (key hook_timeout) bounds each hook. Default 5m.
	HookTimeout Duration `toml:"hook_timeout"`

	// PreviewTimeout (key preview_timeout) is how long a preview waits for
	// `cutover promote` or `cutover abort` before it is aborted by itself.
	// Default 30m.
	PreviewTimeout Duration `toml:"preview_timeout"`

	// Breaking (key breaking) is what a deploy does when the schema
	// preview finds a change that breaks the live release: "refuse"
	// (default: nothing migrated, nothing booted, exit 1) or "hold" (the
	// proxy holds requests while the change runs and the new release
	// boots, as `cutover deploy --hold`).
	Breaking string `toml:"breaking"`
}

// Release configures where releases come from and how many are kept.
type Release struct {
	// Keep (key keep) is how many releases stay on disk; the live one and
	// the rollback target are never pruned. Default 5; at least 2.
	Keep int `toml:"keep"`

	// Repo (key repo) is the git repository `cutover deploy --git REF`
	// checks out: a path (relative to the config file) or any URL git
	// understands. Default empty.
	Repo string `toml:"repo"`

	// Test (key test) is a shell command run in a fresh checkout before the
	// build; a failure stops the deploy before anything touches traffic.
	// Default empty (no tests).
	Test string `toml:"test"`

	// Build (key build) is a shell command run in the fresh checkout after
	// the tests (e.g. "make release"). Default empty.
	Build string `toml:"build"`

	// Shared (key shared) lists paths, relative to the release directory,
	// that live in <data_dir>/shared/ and are linked into every release, so
	// user files survive deploys and rollbacks. No entry may be inside
	// another; Load cleans them ("./log/" becomes "log"). Default [].
	Shared []string `toml:"shared"`
}

// Database configures the migration runner. Empty URL means no database.
type Database struct {
	// URL (key url): "postgres://…" or "sqlite:///path". ${VAR} is expanded
	// from the environment. Default empty (no migrations).
	URL string `toml:"url"`

	// Dir (key dir) is the migrations directory, relative to the release
	// directory. Default "migrations".
	Dir string `toml:"dir"`

	// Table (key table) is the version table. Default "cutover_migrations".
	Table string `toml:"table"`

	// Format (key format): "auto" (default), "native", "golang-migrate",
	// "goose", "flyway".
	Format string `toml:"format"`

	// Contract (key contract): "auto" runs contract migrations after the old
	// release is stopped; "manual" (default) waits for `cutover migrate
	// contract`.
	Contract string `toml:"contract"`

	// LockTimeout (key lock_timeout) is Postgres' lock_timeout for
	// migrations. Default 5s.
	LockTimeout Duration `toml:"lock_timeout"`

	// StatementTimeout (key statement_timeout) is Postgres'
	// statement_timeout for migrations; 0 means none. Default 0.
	StatementTimeout Duration `toml:"statement_timeout"`

	// MigrateLockTimeout (key migrate_lock_timeout) is how long a runner
	// waits for another runner's lock. Default 60s.
	MigrateLockTimeout Duration `toml:"migrate_lock_timeout"`

	// MigrateCommand (key migrate_command) is the app's own migration
	// command (the release phase): "bin/rails db:migrate", "./miniflux
	// -migrate", "python manage.py migrate". It runs once per deploy, with
	// /bin/sh -c in the new release's directory and the app's environment
	// plus the database URL in URLEnv, after prepare and before boot, under
	// the same lock as cutover's own migrations; a schema preview runs it
	// on a scratch copy first (see Preview). Requires URL. Default empty.
	MigrateCommand string `toml:"migrate_command"`

	// ContractCommand (key contract_command) is run like MigrateCommand
	// once the old release is gone, when contract migrations run (see
	// Contract). Default empty.
	ContractCommand string `toml:"contract_command"`

	// URLEnv (key url_env) is the environment variable in which
	// MigrateCommand and ContractCommand get the database URL. Default
	// "DATABASE_URL".
	URLEnv string `toml:"url_env"`

	// CommandTimeout (key command_timeout) bounds each run of
	// MigrateCommand or ContractCommand. Default 30m.
	CommandTimeout Duration `toml:"command_timeout"`

	// Preview (key preview): "on" (default) runs the pending expand
	// migrations and MigrateCommand on a scratch copy of the live schema
	// before they touch the database, and refuses a deploy whose changes
	// would break the live release (see deploy.breaking); "off" skips it.
	Preview string `toml:"preview"`

	// PreviewData (key preview_data) names tables whose rows are copied to
	// the scratch database besides the schema, for a migration tool whose
	// version table cutover does not know. Known version tables
	// (schema_migrations, django_migrations, flyway_schema_history, …)
	// are always copied. Default empty.
	PreviewData []string `toml:"preview_data"`
}

// Duration is a time.Duration written in TOML as a string such as "1.5s",
// "250ms" or "2m".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// SocketPath is the admin API's unix socket, <data_dir>/cutover.sock.
func (c *Config) SocketPath() string {
	if c.DaemonDir != "" { // a unit's view (ForUnit): the daemon's socket
		return filepath.Join(c.DaemonDir, "cutover.sock")
	}
	return filepath.Join(c.DataDir, "cutover.sock")
}

// StatePath is the daemon's SQLite database, <data_dir>/state.db.
func (c *Config) StatePath() string { return filepath.Join(c.DataDir, "state.db") }

// ReleasesDir holds one directory per release, <data_dir>/releases.
func (c *Config) ReleasesDir() string { return filepath.Join(c.DataDir, "releases") }

// LogsDir holds instance logs, <data_dir>/logs/<release>/<instance>.log.
func (c *Config) LogsDir() string { return filepath.Join(c.DataDir, "logs") }

// CurrentLink is the symlink to the live release, <data_dir>/current.
func (c *Config) CurrentLink() string { return filepath.Join(c.DataDir, "current") }

// SharedDir holds the shared paths, <data_dir>/shared.
func (c *Config) SharedDir() string { return filepath.Join(c.DataDir, "shared") }
