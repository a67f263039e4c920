package config

import (
	"net"
	"strings"
	"time"
)

// TCP is one [[app.tcp]] (or [[apps.NAME.tcp]]) table: a TCP port the
// daemon listens on and forwards, connection by connection, to the
// instances of the live release, each of which listens on a port of its
// own given in PortEnv.
type TCP struct {
	// Listen (key listen) is the address the daemon takes connections
	// on, host:port. Required; unique across the file (proxy.listen,
	// proxy.preview_listen and every app's tcp entries).
	Listen string `toml:"listen"`

	// PortEnv (key port_env) is the environment variable in which each
	// instance gets its own free loopback port for this entry, as it gets
	// $PORT for HTTP: the instance must listen on 127.0.0.1:$PORT_ENV.
	// Required; not PORT, not a variable of [app.env], and not another
	// entry's.
	PortEnv string `toml:"port_env"`

	// Balance (key balance) picks the instance a new connection goes to:
	// "first" (every connection to the first healthy instance, by
	// instance number; the next one when it is down: a primary with
	// backups) or "round-robin" (each new connection to the next healthy
	// instance). Either way a connection that cannot be opened is tried
	// on the next instance at once. Default "first".
	Balance string `toml:"balance"`

	// Health (key health) decides which instances are healthy for this
	// port: "tcp" (a connect to the instance's port succeeds, checked
	// every app.health.interval, with app.health.healthy_after and
	// unhealthy_after) or "http" (the instance is in rotation for HTTP).
	// Default "tcp".
	Health string `toml:"health"`

	// ProxyProtocol (key proxy_protocol) sends the client's address to
	// the instance first on each connection, in a PROXY protocol header:
	// "v1" (text), "v2" (binary) or "" (none). Default "".
	ProxyProtocol string `toml:"proxy_protocol"`

	// DrainTimeout (key drain_timeout) is how long connections open to a
	// retiring release (a deploy, a rollback) may go on after the switch
	// before they are closed; the release's instances are stopped only
	// after. Connections open through the old daemon at an upgrade get as
	// long after the new daemon serves. Default proxy.drain_timeout.
	DrainTimeout Duration `toml:"drain_timeout"`

	// ConnectTimeout (key connect_timeout) bounds the connect to one
	// instance; past it the next one is tried. Default 2s.
	ConnectTimeout Duration `toml:"connect_timeout"`
}

// Defaults of a [[app.tcp]] entry that do not come from another key.
const (
	defaultTCPBalance        = "first"
	defaultTCPHealth         = "tcp"
	defaultTCPConnectTimeout = 2 * time.Second
)

// listener is an address the daemon listens on, as the validator saw it,
// so that no two keys ask for the same port.
type listener struct {
	field string
	addr  string
	line  int
}

// claimListen records addr, set at field, and refuses it when an address
// recorded before takes the same port on the same (or every) interface.
// Port 0 (a free one, picked at start) clashes with nothing.
func (v *validator) claimListen(field, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return
	}
	for _, o := range v.listens {
		oh, op, _ := net.SplitHostPort(o.addr) //nolint:errcheck // recorded only when it split
		if op != port || (oh != host && !anyHost(oh) && !anyHost(host)) {
			continue
		}
		v.fail(field, "%q takes the port of %s (%q, line %d); each listener needs a port of its own", addr, o.field, o.addr, o.line)
		return
	}
	v.listens = append(v.listens, listener{field, addr, v.line(field)})
}

// anyHost reports whether a listen host means every interface.
func anyHost(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" || h == "[::]" }

// tcp checks an app's [[app.tcp]] entries and fills their defaults:
// proxyDrain is proxy.drain_timeout, the default of drain_timeout; env is
// the app's [app.env], whose names port_env must not take.
func (v *validator) tcp(s scope, a *App, proxyDrain Duration) {
	envs := map[string]string{} // port_env → the field that set it first
	for i := range a.TCP {
		t := &a.TCP[i]
		at := s.a("tcp") + entryPart(i+1)
		key := func(k string) string { return at + "." + k }
		_, set := v.ix.keys[key("balance")]
		if !set {
			t.Balance = defaultTCPBalance
		}
		if _, set := v.ix.keys[key("health")]; !set {
			t.Health = defaultTCPHealth
		}
		if _, set := v.ix.keys[key("drain_timeout")]; !set {
			t.DrainTimeout = proxyDrain
		}
		if _, set := v.ix.keys[key("connect_timeout")]; !set {
			t.ConnectTimeout = Duration{defaultTCPConnectTimeout}
		}

		if v.required(key("listen"), `"0.0.0.0:2222"`) && v.hostPort(key("listen"), t.Listen, `"0.0.0.0:2222"`) {
			v.claimListen(key("listen"), t.Listen)
		}
		if v.required(key("port_env"), `"NAILGUN_PORT"`) {
			switch name := t.PortEnv; {
			case !isEnvName(name):
				v.fail(key("port_env"), "must be an environment variable name (letters, digits and '_', not starting with a digit), got %q", name)
			case name == "PORT" || strings.HasPrefix(name, "CUTOVER_"):
				v.fail(key("port_env"), "cannot be PORT (the instance's HTTP port) or a CUTOVER_ variable (set by cutover); name the variable the app reads this port from, such as \"NAILGUN_PORT\"")
			case envs[name] != "":
				v.fail(key("port_env"), "%q is also the port_env of %s; each TCP port needs a variable of its own", name, envs[name])
			default:
				if _, ok := a.Env[name]; ok {
					v.fail(key("port_env"), "%q is also set in [%s.env]; cutover sets it for each instance, remove it there", name, s.app)
				}
				envs[name] = at
			}
		}
		switch t.Balance {
		case "first", "round-robin":
		default:
			v.fail(key("balance"), `must be "first" (a primary, then its backups) or "round-robin", got %q`, t.Balance)
		}
		switch t.Health {
		case "tcp", "http":
		default:
			v.fail(key("health"), `must be "tcp" (a connect to the instance's port) or "http" (the instance's HTTP health), got %q`, t.Health)
		}
		switch t.ProxyProtocol {
		case "", "v1", "v2":
		default:
			v.fail(key("proxy_protocol"), `must be "v1", "v2" or "" (none), got %q`, t.ProxyProtocol)
		}
		if t.DrainTimeout.Duration < 0 {
			v.fail(key("drain_timeout"), "must not be negative (0 closes the connections at the switch), got %q", t.DrainTimeout.Duration.String())
		}
		v.positive(key("connect_timeout"), t.ConnectTimeout)
	}
}
