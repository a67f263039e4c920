package config

import (
	"strconv"
	"strings"
)

// tlsFiles checks an app's keys of the TLS listener: tls_cert and tls_key
// together, only with proxy.tls_listen, and on an app with hosts when the
// file has several apps; hsts in its header form. name is the app's, hosts its hosts
// (nil in the single-app form), apps how many the file has.
func (v *validator) tlsFiles(s scope, name string, a *App, p *Proxy, hosts []string, apps int) {
	cert, key := s.a("tls_cert"), s.a("tls_key")
	switch {
	case a.TLSCert != "" && a.TLSKey == "":
		v.fail(cert, "needs %s too: the private key of the certificate (PEM)", key)
	case a.TLSKey != "" && a.TLSCert == "":
		v.fail(key, "needs %s too: the certificate (PEM, leaf first) of the key", cert)
	case a.TLSCert != "" && p.TLSListen == "":
		v.fail(cert, `is served on the TLS listener, and proxy.tls_listen is not set; add tls_listen = "0.0.0.0:443" to [proxy]`)
	case a.TLSCert != "" && len(hosts) == 0 && apps > 1:
		v.fail(cert, `is for the app's host names, and the app lists none; add hosts = ["%s.example.com"] (the names the certificate is for)`, name)
	}
	if a.HSTS != "" {
		if p.TLSListen == "" {
			v.fail(s.a("hsts"), `is sent over TLS, and proxy.tls_listen is not set; add tls_listen = "0.0.0.0:443" to [proxy]`)
		} else if !validHSTS(a.HSTS) {
			v.fail(s.a("hsts"), `must be a Strict-Transport-Security value such as "max-age=31536000" or "max-age=31536000; includeSubDomains", got %q`, a.HSTS)
		}
	}
}

// validHSTS reports whether h is a Strict-Transport-Security value (RFC
// 6797 section 6.1) with max-age in seconds and only the directives
// includeSubDomains and preload besides.
func validHSTS(h string) bool {
	age := false
	for _, d := range strings.Split(h, ";") {
		d = strings.TrimSpace(d)
		name, val, hasVal := strings.Cut(d, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "max-age":
			if _, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(val), `"`), 10, 64); err != nil || !hasVal || age {
				return false
			}
			age = true
		case "includesubdomains", "preload":
			if hasVal {
				return false
			}
		default:
			return false
		}
	}
	return age
}
