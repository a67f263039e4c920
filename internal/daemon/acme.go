package daemon

// Certificates from an ACME CA (package acme) for the apps' host names:
// which names, the Manager's place in the TLS listener's chain and on the
// plain listener, and its status.

import (
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/acme"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/tlsfront"
)

// acmeNames returns the host names ACME obtains certificates for: every
// app's host names, but those a certificate file covers (a file always
// wins, and a name it serves needs no second certificate). Wildcards are
// kept: the Manager skips them and says why. The single-app form names
// no hosts, so it gets none.
func acmeNames(units []*unit, files *tlsfront.FileCerts) []string {
	var names []string
	for _, u := range units {
		for _, h := range u.conf.Hosts {
			if files != nil && !strings.HasPrefix(h, "*.") && files.HasCertificate(h) {
				continue
			}
			if !slices.Contains(names, h) {
				names = append(names, h)
			}
		}
	}
	slices.Sort(names)
	return names
}

// newACME returns the ACME Manager of the daemon when the TLS listener
// runs, tls.acme is on and some app has a host name no file covers; nil
// otherwise. It is added to chain (after the files) and answers the
// TLS-ALPN-01 challenges there; the plain listener offers it the HTTP-01
// challenge requests (proxy.RouterOptions.Challenge). Manage is the
// caller's, once the listeners listen and before the TLS listener serves
// (Manage loads the stored certificates first).
func newACME(cfg *config.Config, units []*unit, files *tlsfront.FileCerts, chain *tlsfront.Chain,
	proxyLn, tlsLn net.Listener, log *slog.Logger) (*acme.Manager, []string, error) {
	if tlsLn == nil || !cfg.TLS.ACME {
		return nil, nil, nil
	}
	names := acmeNames(units, files)
	if len(names) == 0 {
		if !cfg.MultiApp() && files == nil {
			log.Warn("the TLS listener has no certificate to serve: give the app's tls_cert and tls_key, or name its hosts in the [apps.NAME] form for certificates from ACME",
				"addr", tlsLn.Addr().String(), "config", cfg.Path)
		}
		return nil, nil, nil
	}
	m, err := acme.New(cfg, acme.Options{HTTPAddr: proxyLn.Addr().String(), TLSAddr: tlsLn.Addr().String(), Logger: log})
	if err != nil {
		return nil, nil, err
	}
	chain.Sources = append(chain.Sources, m)
	chain.Challenge = m
	return m, names, nil
}

// certExpiries lists the certificates the TLS listener serves, files and
// ACME's, for the metric cutover_tls_certificate_expiry_timestamp_seconds
// (metrics.CertSource). A default file certificate is listed under the
// host "default".
type certExpiries struct {
	files *tlsfront.FileCerts
	acme  *acme.Manager
}

func (c certExpiries) Certificates() []metrics.Certificate {
	var out []metrics.Certificate
	if c.files != nil {
		for _, e := range c.files.Expiries() {
			name := e.Name
			if name == "" {
				name = "default"
			}
			out = append(out, metrics.Certificate{Host: name, Source: "file", NotAfter: e.NotAfter})
		}
	}
	if c.acme != nil {
		for _, st := range c.acme.Status() {
			if st.State == acme.Issued {
				out = append(out, metrics.Certificate{Host: st.Name, Source: "acme", NotAfter: st.NotAfter})
			}
		}
	}
	return out
}
