package config

import (
	"net"
	"path/filepath"
)

// Metrics is the [metrics] table: cutover's own numbers for Prometheus
// (see docs/observability.md).
type Metrics struct {
	// Listen (key listen) is the address, host:port, on which the daemon
	// serves Prometheus's text format at /metrics. "" (the default) serves
	// nothing. A loopback address ("127.0.0.1:9100") keeps the numbers —
	// release names, instance ids, request counts — to the machine; a
	// scraper elsewhere needs a firewall in front of any other address,
	// since /metrics asks for no token. Must differ from proxy.listen and
	// proxy.preview_listen.
	Listen string `toml:"listen"`
}

// Dashboard is the [dashboard] table: a live page of every app's
// releases, traffic and deploys, with their controls (see
// docs/observability.md).
type Dashboard struct {
	// Listen (key listen) is the address, host:port, on which the daemon
	// serves the dashboard. "" (the default): the first `cutover
	// dashboard` opens it on an ephemeral loopback port, open until the
	// daemon exits.
	Listen string `toml:"listen"`

	// Token (key token) logs a browser in: open http://LISTEN/?token=T
	// once and a cookie keeps the session. Required, at least 16
	// characters, when Listen is not a loopback address: the page
	// pauses, aborts and rolls back deploys. On loopback it may be left
	// out; `cutover dashboard` then logs in with a token that the daemon
	// mints for it, valid once for 60 s.
	Token string `toml:"token"`
}

// MinDashboardToken is the shortest dashboard.token accepted.
const MinDashboardToken = 16

// IsLoopback reports whether host:port addr names a loopback host
// ("localhost", 127.0.0.0/8, ::1).
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Log is the [log] table: what the daemon logs besides its own messages.
type Log struct {
	// Access (key access) turns the access log on: one line per request
	// the proxy answered. "stdout" writes it to the daemon's standard
	// output; any other value is a file, relative to the config file's
	// directory, appended to and created (mode 0640) when missing, and
	// opened again on SIGUSR1 to the daemon (for logrotate). "" (the
	// default) logs nothing.
	Access string `toml:"access"`

	// AccessFormat (key access_format) is the access log's format:
	// "json" (one JSON object per line, every field) or "combined"
	// (nginx's and Apache's combined format, which log analysers read).
	// Default "json".
	AccessFormat string `toml:"access_format"`
}

// AccessStdout is Log.Access's value for the daemon's standard output.
const AccessStdout = "stdout"

// observe checks [metrics], [dashboard] and [log].
func (v *validator) observe(c *Config) {
	if d := c.Dashboard.Listen; d != "" && v.hostPort("dashboard.listen", d, `"127.0.0.1:9200"`) {
		switch d {
		case c.Proxy.Listen:
			v.fail("dashboard.listen", "must differ from proxy.listen (%q): the dashboard is served on a port of its own", c.Proxy.Listen)
		case c.Proxy.PreviewListen:
			v.fail("dashboard.listen", "must differ from proxy.preview_listen (%q)", c.Proxy.PreviewListen)
		case c.Metrics.Listen:
			v.fail("dashboard.listen", "must differ from metrics.listen (%q)", c.Metrics.Listen)
		}
		if !IsLoopback(d) && c.Dashboard.Token == "" {
			v.fail("dashboard.token", "must be set when dashboard.listen (%q) is not a loopback address: the dashboard controls deploys; set a random token of %d characters or more (openssl rand -hex 16), or listen on 127.0.0.1", d, MinDashboardToken)
		}
	}
	if t := c.Dashboard.Token; t != "" && len(t) < MinDashboardToken {
		v.fail("dashboard.token", "must be at least %d characters, got %d: make one with openssl rand -hex 16", MinDashboardToken, len(t))
	}
	if m := c.Metrics.Listen; m != "" && v.hostPort("metrics.listen", m, `"127.0.0.1:9100"`) {
		switch m {
		case c.Proxy.Listen:
			v.fail("metrics.listen", "must differ from proxy.listen (%q): /metrics is served on a port of its own", c.Proxy.Listen)
		case c.Proxy.PreviewListen:
			v.fail("metrics.listen", "must differ from proxy.preview_listen (%q)", c.Proxy.PreviewListen)
		}
	}
	switch c.Log.AccessFormat {
	case "json", "combined":
	default:
		v.fail("log.access_format", `must be "json" or "combined", got %q`, c.Log.AccessFormat)
	}
}

// resolveLog makes the access log's path absolute against dir.
func resolveLog(dir string, l *Log) {
	if l.Access != "" && l.Access != AccessStdout {
		l.Access = filepath.Clean(resolve(dir, l.Access))
	}
}
