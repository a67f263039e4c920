package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTCPEntries checks [[app.tcp]] and [[apps.NAME.tcp]]: each entry
// decodes on its own, with its defaults filled.
func TestTCPEntries(t *testing.T) {
	doc := base + `[[app.tcp]]
listen = "0.0.0.0:2222"
port_env = "NAILGUN_PORT"

[[app.tcp]]
listen = "127.0.0.1:2323"
port_env = "ADMIN_PORT"
balance = "round-robin"
health = "http"
proxy_protocol = "v2"
drain_timeout = "0s"
connect_timeout = "500ms"

[proxy]
drain_timeout = "7s"
`
	c, err := parse("cutover.toml", "/srv/shop", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []TCP{
		{Listen: "0.0.0.0:2222", PortEnv: "NAILGUN_PORT", Balance: "first", Health: "tcp", DrainTimeout: Duration{7 * time.Second}, ConnectTimeout: Duration{2 * time.Second}},
		{Listen: "127.0.0.1:2323", PortEnv: "ADMIN_PORT", Balance: "round-robin", Health: "http", ProxyProtocol: "v2", ConnectTimeout: Duration{500 * time.Millisecond}},
	}
	if diff := cmp.Diff(want, c.App.TCP); diff != "" {
		t.Errorf("app.tcp (-want +got):\n%s", diff)
	}

	multi := `[apps.shop]
command = "x"
hosts = ["shop.example.com"]

[[apps.shop.tcp]]
listen = ":2222"
port_env = "NAILGUN_PORT"

[apps.blog]
command = "y"
hosts = ["blog.example.com"]

[[apps.blog.tcp]]
listen = ":2223"
port_env = "NAILGUN_PORT"
`
	c, err = parse("cutover.toml", "/srv", []byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range c.Units() {
		if len(u.App.TCP) != 1 || u.App.TCP[0].PortEnv != "NAILGUN_PORT" || u.App.TCP[0].Balance != "first" {
			t.Errorf("app %s: tcp %+v", u.Name, u.App.TCP)
		}
	}
}

// TestTCPErrors checks that each mistake in a TCP entry is named by its
// entry and key, on its line.
func TestTCPErrors(t *testing.T) {
	entry := func(keys string) string { return "[[app.tcp]]\n" + keys }
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"missing listen", base + entry("port_env = \"P\"\n"),
			`cutover.toml:4: app.tcp[1].listen: required key is missing; add listen = "0.0.0.0:2222" to [app.tcp[1]]`},
		{"missing port_env", base + entry("listen = \":2222\"\n"),
			`cutover.toml:4: app.tcp[1].port_env: required key is missing; add port_env = "NAILGUN_PORT" to [app.tcp[1]]`},
		{"second entry blamed", base + entry("listen = \":2222\"\nport_env = \"A\"\n") + entry("listen = \":2223\"\nport_env = \"A\"\n"),
			`cutover.toml:9: app.tcp[2].port_env: "A" is also the port_env of app.tcp[1]; each TCP port needs a variable of its own`},
		{"PORT", base + entry("listen = \":2222\"\nport_env = \"PORT\"\n"),
			`cutover.toml:6: app.tcp[1].port_env: cannot be PORT (the instance's HTTP port) or a CUTOVER_ variable (set by cutover); name the variable the app reads this port from, such as "NAILGUN_PORT"`},
		{"set in env", base + "[app.env]\nP = \"1\"\n" + entry("listen = \":2222\"\nport_env = \"P\"\n"),
			`cutover.toml:8: app.tcp[1].port_env: "P" is also set in [app.env]; cutover sets it for each instance, remove it there`},
		{"same port as the proxy", base + "[proxy]\nlisten = \"127.0.0.1:8080\"\n" + entry("listen = \"0.0.0.0:8080\"\nport_env = \"P\"\n"),
			`cutover.toml:7: app.tcp[1].listen: "0.0.0.0:8080" takes the port of proxy.listen ("127.0.0.1:8080", line 5); each listener needs a port of its own`},
		{"same port twice", base + entry("listen = \":2222\"\nport_env = \"A\"\n") + entry("listen = \"127.0.0.1:2222\"\nport_env = \"B\"\n"),
			`cutover.toml:8: app.tcp[2].listen: "127.0.0.1:2222" takes the port of app.tcp[1].listen (":2222", line 5); each listener needs a port of its own`},
		{"bad listen", base + entry("listen = \"2222\"\nport_env = \"A\"\n"),
			`cutover.toml:5: app.tcp[1].listen: must be host:port such as "0.0.0.0:2222", got "2222"`},
		{"balance", base + entry("listen = \":2222\"\nport_env = \"A\"\nbalance = \"least\"\n"),
			`cutover.toml:7: app.tcp[1].balance: must be "first" (a primary, then its backups) or "round-robin", got "least"`},
		{"health", base + entry("listen = \":2222\"\nport_env = \"A\"\nhealth = \"ping\"\n"),
			`cutover.toml:7: app.tcp[1].health: must be "tcp" (a connect to the instance's port) or "http" (the instance's HTTP health), got "ping"`},
		{"proxy_protocol", base + entry("listen = \":2222\"\nport_env = \"A\"\nproxy_protocol = \"v3\"\n"),
			`cutover.toml:7: app.tcp[1].proxy_protocol: must be "v1", "v2" or "" (none), got "v3"`},
		{"connect_timeout", base + entry("listen = \":2222\"\nport_env = \"A\"\nconnect_timeout = \"0s\"\n"),
			`cutover.toml:7: app.tcp[1].connect_timeout: must be a positive duration such as "10s", got "0s"`},
		{"unknown key", base + entry("listen = \":2222\"\nport_env = \"A\"\nport = 3\n"),
			`cutover.toml:7: app.tcp[1].port: unknown key; the keys allowed in [app.tcp[1]] are listen, port_env, balance, health, proxy_protocol, drain_timeout, connect_timeout`},
		{"a table, not an array", base + "[app.tcp]\nlisten = \":2222\"\n",
			`cutover.toml:4: app.tcp: must be an array of tables, each written [[name]]: write each entry as [[app.tcp]] followed by its keys, got a table`},
		{"multi-app entry", "[apps.shop]\ncommand = \"x\"\n[[apps.shop.tcp]]\nlisten = \":2222\"\n",
			`cutover.toml:3: apps.shop.tcp[1].port_env: required key is missing; add port_env = "NAILGUN_PORT" to [apps.shop.tcp[1]]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("cutover.toml", "/srv/shop", []byte(tt.doc))
			if err == nil {
				t.Fatalf("parse accepted it: %+v", c.App.TCP)
			}
			if got := err.Error(); got != tt.want && !strings.Contains(got, tt.want) {
				t.Errorf("error:\n got %q\nwant %q", got, tt.want)
			}
			checkAllErrors(t, err)
		})
	}
}
