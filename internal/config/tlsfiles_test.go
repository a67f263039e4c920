package config

import "testing"

// TestTLSErrors checks the keys of the TLS listener: each mistake is
// reported at its key's line with the way out.
func TestTLSErrors(t *testing.T) {
	const tlsProxy = "[proxy]\ntls_listen = \"0.0.0.0:443\"\n"
	const cert = "tls_cert = \"a.crt\"\ntls_key = \"a.key\"\n" // a source for the listener
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"cert without key", base + "tls_cert = \"a.crt\"\n" + tlsProxy,
			`cutover.toml:4: app.tls_cert: needs app.tls_key too: the private key of the certificate (PEM)`},
		{"key without cert", base + "tls_key = \"a.key\"\n" + tlsProxy,
			`cutover.toml:4: app.tls_key: needs app.tls_cert too: the certificate (PEM, leaf first) of the key`},
		{"cert without tls_listen", base + "tls_cert = \"a.crt\"\ntls_key = \"a.key\"\n",
			`cutover.toml:4: app.tls_cert: is served on the TLS listener, and proxy.tls_listen is not set; add tls_listen = "0.0.0.0:443" to [proxy]`},
		{"hsts without tls_listen", base + "hsts = \"max-age=60\"\n",
			`cutover.toml:4: app.hsts: is sent over TLS, and proxy.tls_listen is not set; add tls_listen = "0.0.0.0:443" to [proxy]`},
		{"hsts as a duration", base + "hsts = \"1y\"\n" + cert + tlsProxy,
			`cutover.toml:4: app.hsts: must be a Strict-Transport-Security value such as "max-age=31536000" or "max-age=31536000; includeSubDomains", got "1y"`},
		{"hsts unknown directive", base + "hsts = \"max-age=60; always\"\n" + cert + tlsProxy,
			`cutover.toml:4: app.hsts: must be a Strict-Transport-Security value such as "max-age=31536000" or "max-age=31536000; includeSubDomains", got "max-age=60; always"`},
		{"tls_listen on listen", base + cert + "[proxy]\nlisten = \":80\"\ntls_listen = \":80\"\n",
			`cutover.toml:8: proxy.tls_listen: ":80" takes the port of proxy.listen (":80", line 7); each listener needs a port of its own`},
		{"https_port without tls_listen", base + "[proxy]\nhttps_port = 443\n",
			`cutover.toml:5: proxy.https_port: is the port redirects to https name, and proxy.tls_listen is not set; add tls_listen = "0.0.0.0:443" to [proxy]`},
		{"https_port out of range", base + cert + "[proxy]\ntls_listen = \":8443\"\nhttps_port = 70000\n",
			`cutover.toml:8: proxy.https_port: must be a port, 1 to 65535 (or 0 for the port of tls_listen), got 70000`},
		{"tls_listen not an address", base + cert + "[proxy]\ntls_listen = \"443\"\n",
			`cutover.toml:7: proxy.tls_listen: must be host:port such as "0.0.0.0:443", got "443"`},
		{"tls_listen without any certificate", base + "[proxy]\ntls_listen = \":443\"\n[tls]\nacme = false\n",
			`cutover.toml:5: proxy.tls_listen: no certificate can be served on it: tls.acme is false and no app has tls_cert; give an app tls_cert and tls_key (PEM files) in [app], set tls.acme = true, or remove tls_listen`},
		{"single-app form with ACME only", base + tlsProxy,
			`cutover.toml:5: proxy.tls_listen: no certificate can be served on it: [app] has no tls_cert, and ACME needs the host names to ask certificates for, which the single-app form does not name; give tls_cert and tls_key (PEM files) in [app], or write the app as [apps.NAME] with hosts = ["shop.example.com"] (see docs/tls.md)`},
		{"ACME with only wildcard hosts", tlsProxy + "[apps.shop]\ncommand = \"x\"\nhosts = [\"*.shop.example.com\", \"192.0.2.1\"]\ndefault = true\n",
			`cutover.toml:2: proxy.tls_listen: no certificate can be served on it: no app has tls_cert, and no app has a host name ACME can ask a certificate for (wildcards and addresses are never asked for); add hosts = ["shop.example.com"] to an [apps.NAME], give an app tls_cert and tls_key, or remove tls_listen`},
		{"cert on an app without hosts among several", tlsProxy + multiBase + "tls_cert = \"b.crt\"\ntls_key = \"b.key\"\n",
			`cutover.toml:9: apps.blog.tls_cert: is for the app's host names, and the app lists none; add hosts = ["blog.example.com"] (the names the certificate is for)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("cutover.toml", "/srv/shop", []byte(tt.doc))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %q\nwant %q", err.Error(), tt.want)
			}
		})
	}
}

// TestTLSGood checks the forms that load: relative paths resolved against
// the file's directory, redirect_https on by default, an only app of the
// multi-app form with a certificate and no hosts (the default one).
func TestTLSGood(t *testing.T) {
	c, err := parse("cutover.toml", "/srv/shop", []byte(base+"tls_cert = \"tls/a.crt\"\ntls_key = \"tls/a.key\"\nhsts = \"max-age=31536000; includeSubDomains; preload\"\n[proxy]\ntls_listen = \":8443\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.App.TLSCert != "/srv/shop/tls/a.crt" || c.App.TLSKey != "/srv/shop/tls/a.key" || !c.App.RedirectHTTPS {
		t.Errorf("got cert %q key %q redirect %v", c.App.TLSCert, c.App.TLSKey, c.App.RedirectHTTPS)
	}
	c, err = parse("cutover.toml", "/srv/shop", []byte("[proxy]\ntls_listen = \":8443\"\n[apps.shop]\ncommand = \"x\"\ntls_cert = \"a.crt\"\ntls_key = \"a.key\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if u := c.Units(); len(u) != 1 || !u[0].Default || u[0].App.TLSCert != "/srv/shop/a.crt" {
		t.Errorf("units %+v", u)
	}
}
