package daemon

// The TLS listener's part of the daemon: certificates from the apps'
// files, the routes' redirects and HSTS, and the server (package
// tlsfront).

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/tlsfront"
)

// fileCerts reads the certificate files of every app that has them; nil
// when none has. A pair that does not load is an error naming the app,
// its key and its file, in the config file path.
func fileCerts(cfg *config.Config, units []*unit, log *slog.Logger) (*tlsfront.FileCerts, error) {
	var pairs []tlsfront.FilePair
	for _, u := range units {
		a := u.conf.App
		if a.TLSCert == "" {
			continue
		}
		table := "app"
		if cfg.MultiApp() {
			table = "apps." + u.name
		}
		pairs = append(pairs, tlsfront.FilePair{
			App: u.name, Hosts: u.conf.Hosts, Default: u.conf.Default,
			CertFile: a.TLSCert, KeyFile: a.TLSKey,
			CertKey: table + ".tls_cert", KeyKey: table + ".tls_key",
		})
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	fc, err := tlsfront.NewFileCerts(pairs, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	return fc, nil
}

// certChain is the TLS listener's chain of certificate sources: the
// files first.
func certChain(files *tlsfront.FileCerts) *tlsfront.Chain {
	c := &tlsfront.Chain{}
	if files != nil {
		c.Sources = append(c.Sources, files)
	}
	return c
}

// withFrontDoor sets, when the TLS listener is on, each route's redirect
// to https and HSTS from its app's config.
func withFrontDoor(cfg *config.Config, rs []proxy.Route, units []*unit) []proxy.Route {
	if cfg.Proxy.TLSListen == "" {
		return rs
	}
	for i, u := range units {
		rs[i].RedirectHTTPS = u.conf.App.RedirectHTTPS
		rs[i].HSTS = u.conf.App.HSTS
	}
	return rs
}

// portOf returns the TCP port of addr, 0 when it has none.
func portOf(addr net.Addr) int {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.Port
	}
	return 0
}
