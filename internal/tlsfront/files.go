package tlsfront

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is FileCerts' default look at its files.
const DefaultReloadInterval = 5 * time.Second

// FilePair is one app's certificate and key files.
type FilePair struct {
	// App names the app, in errors and logs.
	App string
	// Hosts are the app's host names (lower case, exact or "*." wildcard),
	// matched as the proxy's Router matches them. Empty with Default.
	Hosts []string
	// Default makes the certificate serve every name no pair lists, and
	// handshakes that name none (no SNI).
	Default bool
	// CertFile and KeyFile are the PEM files (absolute paths). CertKey and
	// KeyKey name their config keys, for errors ("app.tls_cert").
	CertFile, KeyFile string
	CertKey, KeyKey   string
}

// FileCerts serves certificates read from PEM files, one pair per app, and
// reads a pair again when its files change (Run, Check). It is a
// CertSource, a FallbackSource (the default certificate) and a
// CertChecker. Use NewFileCerts.
type FileCerts struct {
	log   *slog.Logger
	pairs []*filePair
	// mu serialises Check; snap is read by every handshake without it.
	mu   sync.Mutex
	snap atomic.Pointer[certSnap]
}

// filePair is a FilePair with what was last loaded from its files.
type filePair struct {
	FilePair
	cert *tls.Certificate
	// stamp is the files' size and modification time when cert was read,
	// or when they last failed to load (so a bad pair is logged once per
	// change, not every interval).
	stamp fileStamp
}

// fileStamp tells whether a pair's files changed.
type fileStamp struct {
	certSize, keySize int64
	certMod, keyMod   time.Time
}

// certSnap is an immutable lookup table of the certificates loaded.
type certSnap struct {
	exact  map[string]*tls.Certificate
	suffix map[string]*tls.Certificate
	def    *tls.Certificate
	// covered holds the exact names whose certificate is valid for them,
	// decided once per publish: HasCertificate runs on plain requests.
	covered map[string]bool
}

// NewFileCerts reads every pair. A pair that does not load is an error
// naming its app, its config key and its file. log receives the reloads.
func NewFileCerts(pairs []FilePair, log *slog.Logger) (*FileCerts, error) {
	f := &FileCerts{log: log.With("component", "tls")}
	for _, p := range pairs {
		fp := &filePair{FilePair: p}
		st, err := stampOf(p)
		if err != nil {
			return nil, err
		}
		cert, err := loadPair(p)
		if err != nil {
			return nil, err
		}
		fp.cert, fp.stamp = cert, st
		f.warnNames(fp)
		f.pairs = append(f.pairs, fp)
		f.log.Info("certificate loaded", "app", p.App, "file", p.CertFile, "names", certNames(cert), "not_after", notAfter(cert))
	}
	f.publish()
	return f, nil
}

// loadPair reads and parses one pair, with an error saying which.
func loadPair(p FilePair) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(p.CertFile)
	if err != nil {
		return nil, fmt.Errorf("app %s: %s: %w", p.App, p.CertKey, err)
	}
	keyPEM, err := os.ReadFile(p.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("app %s: %s: %w", p.App, p.KeyKey, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("app %s: %s = %q with %s = %q: %w; give the PEM certificate chain (leaf first) and its private key",
			p.App, p.CertKey, p.CertFile, p.KeyKey, p.KeyFile, err)
	}
	return &cert, nil
}

// stampOf returns the size and modification times of p's files.
func stampOf(p FilePair) (fileStamp, error) {
	c, err := os.Stat(p.CertFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("app %s: %s: %w", p.App, p.CertKey, err)
	}
	k, err := os.Stat(p.KeyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("app %s: %s: %w", p.App, p.KeyKey, err)
	}
	return fileStamp{certSize: c.Size(), keySize: k.Size(), certMod: c.ModTime(), keyMod: k.ModTime()}, nil
}

// warnNames logs the host names of p its certificate does not cover:
// clients would refuse it for them.
func (f *FileCerts) warnNames(p *filePair) {
	leaf := p.cert.Leaf
	if leaf == nil {
		return
	}
	for _, h := range p.Hosts {
		name := h
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			name = "cutover-check." + rest
		}
		if leaf.VerifyHostname(name) != nil {
			f.log.Warn("the certificate does not cover a host name of its app: clients will refuse it there",
				"app", p.App, "host", h, "key", p.CertKey, "file", p.CertFile, "names", certNames(p.cert))
		}
	}
	if time.Now().After(leaf.NotAfter) {
		f.log.Warn("the certificate has expired: clients will refuse it", "app", p.App, "key", p.CertKey, "file", p.CertFile, "not_after", leaf.NotAfter)
	}
}

// Expiry is when the certificate served for a name expires.
type Expiry struct {
	// Name is a host name of the certificate's app, or "" for the default
	// certificate of an app that lists none (the single-app form).
	Name     string
	NotAfter time.Time
}

// Expiries lists, for every host name of every pair (and the default
// certificate), when the certificate served now expires.
func (f *FileCerts) Expiries() []Expiry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Expiry
	for _, p := range f.pairs {
		na := notAfter(p.cert)
		if len(p.Hosts) == 0 {
			out = append(out, Expiry{Name: "", NotAfter: na})
		}
		for _, h := range p.Hosts {
			out = append(out, Expiry{Name: h, NotAfter: na})
		}
	}
	return out
}

// publish builds the lookup table from the pairs' certificates.
func (f *FileCerts) publish() {
	s := &certSnap{exact: map[string]*tls.Certificate{}, suffix: map[string]*tls.Certificate{}, covered: map[string]bool{}}
	for _, p := range f.pairs {
		if p.Default {
			s.def = p.cert
		}
		for _, h := range p.Hosts {
			if suffix, ok := strings.CutPrefix(h, "*"); ok {
				s.suffix[suffix] = p.cert
			} else {
				s.exact[h] = p.cert
				s.covered[h] = validFor(p.cert, h)
			}
		}
	}
	f.snap.Store(s)
}

// Check looks at every pair's files once and reads again those that
// changed; a pair that no longer loads keeps its certificate and is logged
// with the reason. Run calls it every interval; tests call it directly.
func (f *FileCerts) Check() {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	for _, p := range f.pairs {
		st, err := stampOf(p.FilePair)
		if err != nil {
			if p.stamp != (fileStamp{}) {
				f.log.Warn("certificate files unreadable; serving the certificate loaded before", "app", p.App, "err", err)
				p.stamp = fileStamp{}
			}
			continue
		}
		if st == p.stamp {
			continue
		}
		p.stamp = st
		cert, err := loadPair(p.FilePair)
		if err != nil {
			// A certificate and key written one after the other are seen
			// half-changed for a moment: the next change is read again.
			f.log.Warn("certificate files changed but do not load; serving the certificate loaded before", "app", p.App, "err", err)
			continue
		}
		p.cert = cert
		f.warnNames(p)
		f.log.Info("certificate reloaded", "app", p.App, "file", p.CertFile, "names", certNames(cert), "not_after", notAfter(cert))
		changed = true
	}
	if changed {
		f.publish()
	}
}

// certNames lists the names c is valid for, for logs.
func certNames(c *tls.Certificate) string {
	if c.Leaf == nil {
		return ""
	}
	names := append([]string(nil), c.Leaf.DNSNames...)
	for _, ip := range c.Leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return strings.Join(names, ",")
}

func notAfter(c *tls.Certificate) time.Time {
	if c.Leaf == nil {
		return time.Time{}
	}
	return c.Leaf.NotAfter
}

// Run calls Check every interval (0 = DefaultReloadInterval) until ctx
// ends.
func (f *FileCerts) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.Check()
		}
	}
}

// lookup returns the certificate for name (lower case, no trailing dot):
// exact, else the longest wildcard suffix, else the default (isDef).
func (s *certSnap) lookup(name string) (c *tls.Certificate, isDef bool) {
	if c, ok := s.exact[name]; ok {
		return c, false
	}
	if len(s.suffix) > 0 {
		for i := 0; i < len(name); i++ {
			if name[i] == '.' {
				if c, ok := s.suffix[name[i:]]; ok {
					return c, false
				}
			}
		}
	}
	return s.def, s.def != nil
}

// GetCertificate returns the certificate for hello's server name: an
// app's that lists it (or a wildcard matching it), else the default one
// when it is valid for the name, else (nil, nil), so that the chain asks
// its other sources (ACME) before FallbackCertificate.
func (f *FileCerts) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalName(hello.ServerName)
	c, isDef := f.snap.Load().lookup(name)
	if isDef && (name == "" || c.Leaf == nil || c.Leaf.VerifyHostname(name) != nil) {
		return nil, nil
	}
	return c, nil
}

// FallbackCertificate returns the default app's certificate, nil when
// there is none: the chain serves it to a handshake no source has a
// certificate for, and to one that names no server (no SNI).
func (f *FileCerts) FallbackCertificate() *tls.Certificate {
	return f.snap.Load().def
}

// HasCertificate reports whether a certificate serves name: one of an
// app that lists name (or a wildcard matching it), or the default
// certificate when it is valid for name — a redirect to https for a name
// the default certificate does not cover (an IP address, another domain)
// would only show the client a certificate error.
//
// The certificate matched must be valid for name, not only chosen for it:
// a host routed to an app by its wildcard "*.example.com" at a deeper
// level (a.b.example.com) is not covered by a certificate for
// *.example.com, nor is a host the app's file does not name.
func (f *FileCerts) HasCertificate(name string) bool {
	name = normalName(name)
	s := f.snap.Load()
	if ok, exact := s.covered[name]; exact {
		return ok
	}
	c, _ := s.lookup(name)
	return validFor(c, name)
}

// validFor reports whether c is valid for the host name: what a client
// checks (SAN, one-label wildcards; no expiry check).
func validFor(c *tls.Certificate, name string) bool {
	return c != nil && c.Leaf != nil && name != "" && c.Leaf.VerifyHostname(name) == nil
}

// normalName lower-cases name and drops a trailing dot.
func normalName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			name = strings.ToLower(name)
			break
		}
	}
	return strings.TrimSuffix(name, ".")
}
