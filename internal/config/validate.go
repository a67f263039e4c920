package config

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// validator checks the values of a decoded Config, reporting each problem
// at the line of its key.
type validator struct {
	ix   *index
	errs []*Error

	// listens are the addresses the file asks the daemon to listen on,
	// in the order checked (see claimListen).
	listens []listener
	// proxyDrain is proxy.drain_timeout, the default of each TCP entry's.
	proxyDrain Duration
}

// line is the line of field's key, or of its table when the key is not
// set (a default), or 0.
func (v *validator) line(field string) int {
	if l, ok := v.ix.keys[field]; ok {
		return l
	}
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return v.ix.tables[field[:i]]
	}
	return 0
}

// scope names the keys of one app: the single-app form's [app], [deploy],
// [release] and [database], or the multi-app form's [apps.NAME] and its
// sub-tables.
type scope struct {
	app  string // the table of the app's own keys: "app" or "apps.shop"
	root string // prefix of its deploy, release and database tables: "" or "apps.shop."
}

// single is the scope of the single-app form.
var single = scope{app: "app"}

// appScope is the scope of [apps.NAME].
func appScope(name string) scope {
	t := dotted([]string{"apps", name})
	return scope{app: t, root: t + "."}
}

// a names a key of the app's table: a("health.path") is "app.health.path".
func (s scope) a(key string) string { return s.app + "." + key }

// r names a key of its deploy, release or database table:
// r("deploy.batch") is "deploy.batch" or "apps.shop.deploy.batch".
func (s scope) r(key string) string { return s.root + key }

func (v *validator) fail(field, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.ix.file, Line: v.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// required reports a missing key. The line is its table's header, or 0
// when the table is absent.
func (v *validator) required(field, example string) bool {
	if _, ok := v.ix.keys[field]; ok {
		return true
	}
	i := strings.LastIndexByte(field, '.')
	table, key := field[:i], field[i+1:]
	v.errs = append(v.errs, &Error{
		File:  v.ix.file,
		Line:  v.ix.tables[table],
		Field: field,
		Msg:   fmt.Sprintf("required key is missing; add %s = %s to [%s]", key, example, table),
	})
	return false
}

func (v *validator) config(c *Config) {
	if strings.TrimSpace(c.DataDir) == "" {
		v.fail("data_dir", `must not be empty; the default is ".cutover" beside the config file`)
	}
	v.proxy(&c.Proxy)
	v.tls(&c.TLS)
	v.observe(c)
	v.tlsSource(c)
	if c.MultiApp() {
		v.apps(c)
		return
	}
	v.unit(single, &c.App, &c.Deploy, &c.Release, &c.Database)
	v.tlsFiles(single, c.App.Name, &c.App, &c.Proxy, nil, 1)
}

// tlsSource refuses a TLS listener that could serve no certificate: no
// app with tls_cert, and ACME off or with no host name to ask for (the
// single-app form names none; wildcards and addresses are never asked
// for). Every handshake would fail.
func (v *validator) tlsSource(c *Config) {
	// A half pair is reported on its own key: one error is enough.
	if c.Proxy.TLSListen == "" || c.App.TLSCert != "" || c.App.TLSKey != "" {
		return
	}
	acmeName := false
	for _, e := range c.Apps {
		if e.TLSCert != "" || e.TLSKey != "" {
			return
		}
		for _, h := range e.Hosts {
			if !strings.HasPrefix(h, "*.") && net.ParseIP(h) == nil {
				acmeName = true
			}
		}
	}
	switch {
	case !c.TLS.ACME && c.MultiApp():
		v.fail("proxy.tls_listen", "no certificate can be served on it: tls.acme is false and no app has tls_cert; give an app tls_cert and tls_key (PEM files) in [apps.NAME], set tls.acme = true, or remove tls_listen")
	case !c.TLS.ACME:
		v.fail("proxy.tls_listen", "no certificate can be served on it: tls.acme is false and no app has tls_cert; give an app tls_cert and tls_key (PEM files) in [app], set tls.acme = true, or remove tls_listen")
	case !c.MultiApp():
		v.fail("proxy.tls_listen", `no certificate can be served on it: [app] has no tls_cert, and ACME needs the host names to ask certificates for, which the single-app form does not name; give tls_cert and tls_key (PEM files) in [app], or write the app as [apps.NAME] with hosts = ["shop.example.com"] (see docs/tls.md)`)
	case !acmeName:
		v.fail("proxy.tls_listen", `no certificate can be served on it: no app has tls_cert, and no app has a host name ACME can ask a certificate for (wildcards and addresses are never asked for); add hosts = ["shop.example.com"] to an [apps.NAME], give an app tls_cert and tls_key, or remove tls_listen`)
	}
}

// unit checks the tables of one app.
func (v *validator) unit(s scope, a *App, d *Deploy, r *Release, db *Database) {
	v.app(s, a)
	v.tcp(s, a, v.proxyDrain)
	v.health(s, &a.Health)
	v.deploy(s, d)
	if r.Keep < 2 {
		v.fail(s.r("release.keep"), "must be at least 2 (the live release and the rollback target), got %d", r.Keep)
	}
	v.shared(s.r("release.shared"), r.Shared)
	v.database(s, db)
}

// shared checks release.shared: each entry a path inside the release, and
// no entry equal to or inside another, since each is replaced by one
// symlink into <data_dir>/shared/. It cleans the entries in place.
func (v *validator) shared(field string, paths []string) {
	var ok []string // cleaned entries accepted so far
	var at []int    // their 1-based positions
	defer func() {
		for i, p := range paths {
			paths[i] = filepath.Clean(p)
		}
	}()
	for i, p := range paths {
		clean := filepath.Clean(p)
		if p == "" || filepath.IsAbs(p) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
			v.fail(field, "entry %d (%q) must be a path inside the release, such as \"uploads\" or \"log\"", i+1, p)
			continue
		}
		dup := false
		for j, o := range ok {
			if clean == o || strings.HasPrefix(clean, o+"/") || strings.HasPrefix(o, clean+"/") {
				v.fail(field, "entry %d (%q) overlaps entry %d (%q); list each shared path once, and none inside another", i+1, p, at[j], paths[at[j]-1])
				dup = true
				break
			}
		}
		if !dup {
			ok = append(ok, clean)
			at = append(at, i+1)
		}
	}
}

func (v *validator) app(s scope, a *App) {
	if s == single {
		if v.required("app.name", `"myapp"`) && !isAppName(a.Name) {
			v.fail("app.name", "must be letters, digits, '-', '_' and '.', got %q", a.Name)
		}
	}
	if v.required(s.a("command"), `"./bin/server --port $PORT"`) && strings.TrimSpace(a.Command) == "" {
		v.fail(s.a("command"), "must not be empty: it starts one instance, which must listen on 127.0.0.1:$PORT")
	}
	if a.Instances < 1 || a.Instances > 64 {
		v.fail(s.a("instances"), "must be between 1 and 64, got %d", a.Instances)
	}
	for name, val := range a.Env {
		field := s.a("env." + quoteKey(name))
		switch {
		case name == "PORT":
			v.fail(field, "PORT is set by cutover for each instance and cannot be set here")
		case !isEnvName(name):
			v.fail(field, "must be a variable name of letters, digits and '_', not starting with a digit")
		case strings.ContainsRune(val, 0):
			v.fail(field, "must not contain a NUL byte")
		}
	}
	sig, err := ParseSignal(a.StopSignal)
	if err != nil {
		v.fail(s.a("stop_signal"), "%v", err)
	}
	a.Signal = sig
	v.positive(s.a("stop_timeout"), a.StopTimeout)
	if _, set := v.ix.keys[s.a("logs_max_total")]; !set {
		// A log_max_size set before logs_max_total existed must not make
		// the config fail: the default grows to fit it.
		a.LogsMaxTotal = max(a.LogsMaxTotal, 2*a.LogMaxSize)
	}
	if a.LogMaxSize < 4096 {
		v.fail(s.a("log_max_size"), "must be at least 4096 bytes, got %d", a.LogMaxSize)
	} else if a.LogsMaxTotal < 2*a.LogMaxSize {
		v.fail(s.a("logs_max_total"), "must be at least twice %s (%d bytes: a log and its rotated .1), got %d", s.a("log_max_size"), 2*a.LogMaxSize, a.LogsMaxTotal)
	}
	if a.BootNice < 0 || a.BootNice > 19 {
		v.fail(s.a("boot_nice"), "must be 0 (off) to 19, got %d", a.BootNice)
	}
	switch a.UpstreamProtocol {
	case UpstreamHTTP1, UpstreamH2C:
	default:
		v.fail(s.a("upstream_protocol"), `must be "http1" (HTTP/1.1 to the instances) or "h2c" (HTTP/2 without TLS, for a gRPC server), got %q`, a.UpstreamProtocol)
	}
	if a.Health.GRPC && a.UpstreamProtocol != UpstreamH2C {
		v.fail(s.a("health.grpc"), `needs upstream_protocol = "h2c" in the same table: the gRPC health protocol runs over HTTP/2, and an app spoken to over HTTP/1.1 is checked with a GET of health.path`)
	}
	if a.Health.GRPCService != "" && !a.Health.GRPC {
		v.fail(s.a("health.grpc_service"), "is the service the gRPC health check asks about; set health.grpc = true too, or remove it")
	}
}

// Values of App.UpstreamProtocol.
const (
	// UpstreamHTTP1 is HTTP/1.1 keep-alive to the instances.
	UpstreamHTTP1 = "http1"
	// UpstreamH2C is HTTP/2 without TLS, with prior knowledge.
	UpstreamH2C = "h2c"
)

func (v *validator) health(s scope, h *Health) {
	switch {
	case !strings.HasPrefix(h.Path, "/"):
		v.fail(s.a("health.path"), `must be a URL path starting with "/", got %q`, h.Path)
	case strings.ContainsFunc(h.Path, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		v.fail(s.a("health.path"), `must hold no spaces or control characters (write a space as %%20), got %q`, h.Path)
	}
	v.positive(s.a("health.interval"), h.Interval)
	v.positive(s.a("health.timeout"), h.Timeout)
	v.positive(s.a("health.boot_timeout"), h.BootTimeout)
	if h.HealthyAfter < 1 {
		v.fail(s.a("health.healthy_after"), "must be at least 1, got %d", h.HealthyAfter)
	}
	if h.UnhealthyAfter < 1 {
		v.fail(s.a("health.unhealthy_after"), "must be at least 1, got %d", h.UnhealthyAfter)
	}
	if h.RestartAfter != 0 && h.RestartAfter < h.UnhealthyAfter {
		v.fail(s.a("health.restart_after"), "must be 0 (never restart) or at least unhealthy_after (%d), so that an instance leaves rotation before it is killed; got %d", h.UnhealthyAfter, h.RestartAfter)
	}
}

func (v *validator) proxy(p *Proxy) {
	v.proxyDrain = p.DrainTimeout
	if v.hostPort("proxy.listen", p.Listen, `"127.0.0.1:8080" or ":80"`) {
		v.claimListen("proxy.listen", p.Listen)
	}
	v.positive("proxy.hold_timeout", p.HoldTimeout)
	v.positive("proxy.drain_timeout", p.DrainTimeout)
	if p.DrainPace.Duration < 0 {
		v.fail("proxy.drain_pace", "must not be negative (0 closes everything at once), got %q", p.DrainPace.Duration.String())
	}
	v.positive("proxy.read_header_timeout", p.ReadHeaderTimeout)
	v.positive("proxy.idle_timeout", p.IdleTimeout)
	v.positive("proxy.response_header_timeout", p.ResponseHeaderTimeout)
	v.positive("proxy.client_body_timeout", p.ClientBodyTimeout)
	if p.RequestBufferMemory < 1 {
		v.fail("proxy.request_buffer_memory", "must be at least 1 byte, got %d", p.RequestBufferMemory)
	}
	if p.RequestBufferMax < 1 {
		v.fail("proxy.request_buffer_max", "must be at least 1 byte, got %d (request_buffering = false streams every body)", p.RequestBufferMax)
	}
	if p.MaxRequestBody < 0 {
		v.fail("proxy.max_request_body", "must be 0 (no limit) or a number of bytes, got %d", p.MaxRequestBody)
	}
	for i, e := range p.TrustedProxies {
		if _, err := parsePrefix(e); err != nil {
			v.fail("proxy.trusted_proxies", "entry %d (%q) must be a network such as \"10.0.0.0/8\" or an address such as \"192.0.2.10\"", i+1, e)
		}
	}
	switch {
	case p.MaxHeaderBytes < minHeaderBytes || p.MaxHeaderBytes > maxHeaderBytes:
		v.fail("proxy.max_header_bytes", "must be %d to %d bytes (default 65536), got %d", minHeaderBytes, maxHeaderBytes, p.MaxHeaderBytes)
	case p.MaxRequestLine < minRequestLine || p.MaxRequestLine > p.MaxHeaderBytes:
		v.fail("proxy.max_request_line", "must be %d bytes to max_header_bytes (%d) (default 8192), got %d", minRequestLine, p.MaxHeaderBytes, p.MaxRequestLine)
	}
	if p.PreviewListen != "" && v.hostPort("proxy.preview_listen", p.PreviewListen, `"127.0.0.1:8081"`) {
		if p.PreviewListen == p.Listen {
			v.fail("proxy.preview_listen", "must differ from proxy.listen (%q)", p.Listen)
		} else {
			v.claimListen("proxy.preview_listen", p.PreviewListen)
		}
	}
	if p.TLSListen != "" && v.hostPort("proxy.tls_listen", p.TLSListen, `"0.0.0.0:443"`) {
		v.claimListen("proxy.tls_listen", p.TLSListen)
	}
	switch {
	case p.HTTPSPort < 0 || p.HTTPSPort > 65535:
		v.fail("proxy.https_port", "must be a port, 1 to 65535 (or 0 for the port of tls_listen), got %d", p.HTTPSPort)
	case p.HTTPSPort != 0 && p.TLSListen == "":
		v.fail("proxy.https_port", `is the port redirects to https name, and proxy.tls_listen is not set; add tls_listen = "0.0.0.0:443" to [proxy]`)
	}
	if p.HTTP2Server != "cutover" && p.HTTP2Server != "go" {
		v.fail("proxy.http2_server", `must be "cutover" or "go" (default "cutover"), got %q`, p.HTTP2Server)
	}
	if !isCookieName(p.Cookie) {
		v.fail("proxy.cookie", "must be a cookie name of letters, digits, '-' and '_', got %q", p.Cookie)
	}
	if p.VersionHeader != "" && !isHeaderName(p.VersionHeader) {
		v.fail("proxy.version_header", "must be a header name such as \"X-Cutover-Release\", or \"\" for none, got %q", p.VersionHeader)
	}
}

// Bounds of proxy.max_request_line and proxy.max_header_bytes: below them
// ordinary requests (a few cookies, a long query) fail; above 1 MiB a few
// hundred clients sending heads take the daemon's memory.
const (
	minRequestLine = 256
	minHeaderBytes = 1 << 10
	maxHeaderBytes = 1 << 20
)

// hostPort checks that addr is host:port with a numeric port, as both
// listen addresses must be; it reports whether it is. A service name such
// as "http" is refused: the address should say which port it takes.
func (v *validator) hostPort(field, addr, example string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(field, "must be host:port such as %s, got %q", example, addr)
		return false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.fail(field, "port must be a number from 0 to 65535 (0 picks a free one), got %q", port)
		return false
	}
	return true
}

func (v *validator) deploy(s scope, d *Deploy) {
	switch d.Breaking {
	case "refuse", "hold":
	default:
		v.fail(s.r("deploy.breaking"), `must be "refuse" or "hold", got %q`, d.Breaking)
	}
	switch d.Strategy {
	case "bluegreen", "rolling", "canary":
	case "stop-first":
		if d.Watch.Duration > 0 {
			v.fail(s.r("deploy.watch"), `must be "0s" with strategy "stop-first": the old release is stopped before the new one boots, so nothing stays warm to go back to`)
		}
	default:
		v.fail(s.r("deploy.strategy"), `must be "bluegreen", "rolling", "canary" or "stop-first", got %q`, d.Strategy)
	}
	switch b := d.Batch.(type) {
	case int64:
		if b < 1 || b > 64 {
			v.fail(s.r("deploy.batch"), "must be between 1 and 64 instances, or a percentage such as \"50%%\", got %d", b)
		}
		d.BatchCount = int(b)
	case string:
		pct, err := parsePercent(b)
		if err != nil {
			v.fail(s.r("deploy.batch"), "must be a number of instances such as 1, or a percentage such as \"50%%\": %v", err)
		}
		d.BatchPercent = pct
	default:
		v.fail(s.r("deploy.batch"), "must be a number of instances such as 1, or a percentage such as \"50%%\"")
	}
	d.StepPercents = nil
	if d.Strategy == "canary" && len(d.Steps) == 0 {
		v.fail(s.r("deploy.steps"), `must list at least one step such as "5%%" for the canary strategy`)
	}
	last := 0
	for _, st := range d.Steps {
		pct, err := parsePercent(st)
		switch {
		case err != nil:
			v.fail(s.r("deploy.steps"), "%v", err)
		case pct >= 100:
			v.fail(s.r("deploy.steps"), "step %q: steps are below 100%% (the deploy ends at 100%% by itself)", st)
		case pct <= last:
			v.fail(s.r("deploy.steps"), "step %q: steps must increase, got it after %d%%", st, last)
		default:
			last = pct
			d.StepPercents = append(d.StepPercents, pct)
		}
	}
	v.positive(s.r("deploy.step_time"), d.StepTime)
	if d.Watch.Duration < 0 {
		v.fail(s.r("deploy.watch"), "must not be negative (0 turns the watch off), got %s", d.Watch)
	}
	// TOML has nan and inf; the comparisons are written so that NaN, which
	// compares false with everything, fails them, and inf is refused
	// explicitly: a bound the judge can never reach is a typo, not a choice.
	if !(d.MaxErrorRate >= 0 && d.MaxErrorRate <= 1) {
		v.fail(s.r("deploy.max_error_rate"), "must be a share between 0 and 1 such as 0.05, got %v", d.MaxErrorRate)
	}
	if !(d.Confidence > 0.5 && d.Confidence < 1) {
		v.fail(s.r("deploy.confidence"), "must be a confidence level above 0.5 and below 1 such as 0.99, got %v", d.Confidence)
	}
	if !(d.MinLatencyEffect >= 0) || math.IsInf(d.MinLatencyEffect, 1) {
		v.fail(s.r("deploy.min_latency_effect"), "must be a finite share of at least 0 such as 0.2 (20%% slower; 0 turns the latency test off), got %v", d.MinLatencyEffect)
	}
	if !(d.MinErrorEffect >= 0 && d.MinErrorEffect <= 1) {
		v.fail(s.r("deploy.min_error_effect"), "must be a share between 0 and 1 such as 0.01 (one point more errors; 0 turns the test off), got %v", d.MinErrorEffect)
	}
	if d.MinRequests < 1 {
		v.fail(s.r("deploy.min_requests"), "must be at least 1, got %d", d.MinRequests)
	}
	v.positive(s.r("deploy.hook_timeout"), d.HookTimeout)
	v.positive(s.r("deploy.preview_timeout"), d.PreviewTimeout)
}

// parsePercent parses "25%" into 25 (1 to 100).
func parsePercent(s string) (int, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, fmt.Errorf("%q is not a percentage such as \"25%%\"", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 1 || n > 100 {
		return 0, fmt.Errorf("%q is not a percentage from 1%% to 100%%", s)
	}
	return n, nil
}

func (v *validator) database(s scope, d *Database) {
	if d.URL != "" {
		if err := checkURL(d.URL); err != nil {
			v.fail(s.r("database.url"), "%v", err)
		}
	}
	if strings.TrimSpace(d.Dir) == "" {
		v.fail(s.r("database.dir"), `must not be empty; the default is "migrations"`)
	}
	if !isTableName(d.Table) {
		v.fail(s.r("database.table"), "must be a table name (letters, digits and '_', optionally schema.table, at most 63 each), got %q", d.Table)
	}
	switch d.Format {
	case "auto", "native", "golang-migrate", "goose", "flyway":
	default:
		v.fail(s.r("database.format"), `must be one of "auto", "native", "golang-migrate", "goose", "flyway", got %q`, d.Format)
	}
	switch d.Contract {
	case "auto", "manual":
	default:
		v.fail(s.r("database.contract"), `must be "auto" or "manual", got %q`, d.Contract)
	}
	v.positive(s.r("database.lock_timeout"), d.LockTimeout)
	if d.StatementTimeout.Duration < 0 {
		v.fail(s.r("database.statement_timeout"), "must not be negative (0 means no limit), got %s", d.StatementTimeout)
	}
	v.positive(s.r("database.migrate_lock_timeout"), d.MigrateLockTimeout)
	for _, c := range []struct{ field, cmd string }{{s.r("database.migrate_command"), d.MigrateCommand}, {s.r("database.contract_command"), d.ContractCommand}} {
		if c.cmd != "" && d.URL == "" {
			v.fail(c.field, "needs %s: the command gets it in $%s, and the schema preview reads the database it changes", s.r("database.url"), d.URLEnv)
		}
		if c.cmd != "" && strings.HasPrefix(d.URL, "sqlite://") && !strings.HasPrefix(d.URL, "sqlite:///") {
			v.fail("database.url", "must be an absolute sqlite:///path when database.%s is set: the command runs in the release directory, where a relative path names another file", strings.TrimPrefix(c.field, "database."))
			break
		}
	}
	if !isEnvName(d.URLEnv) || d.URLEnv == "PORT" {
		v.fail(s.r("database.url_env"), "must be an environment variable name other than PORT (letters, digits and '_'), got %q", d.URLEnv)
	}
	v.positive(s.r("database.command_timeout"), d.CommandTimeout)
	switch d.Preview {
	case "on", "off":
	default:
		v.fail(s.r("database.preview"), `must be "on" or "off", got %q`, d.Preview)
	}
	for _, t := range d.PreviewData {
		if !isTableName(t) {
			v.fail(s.r("database.preview_data"), "must list table names (letters, digits and '_', optionally schema.table), got %q", t)
		}
	}
}

// positive checks that a duration is greater than zero.
func (v *validator) positive(field string, d Duration) {
	if d.Duration <= 0 {
		v.fail(field, "must be a positive duration such as %q, got %q", "10s", d.Duration.String())
	}
}

// signals are the stop signals an app may ask for.
var signals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM,
	"INT":  syscall.SIGINT,
	"QUIT": syscall.SIGQUIT,
	"HUP":  syscall.SIGHUP,
	"USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// ParseSignal parses a stop signal name: "TERM", "INT", "QUIT", "HUP",
// "USR1" or "USR2", with or without "SIG", in any case.
func ParseSignal(name string) (syscall.Signal, error) {
	n := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "SIG")
	if s, ok := signals[n]; ok {
		return s, nil
	}
	return 0, fmt.Errorf(`must be one of "TERM", "INT", "QUIT", "HUP", "USR1", "USR2" (with or without "SIG"), got %q`, name)
}
