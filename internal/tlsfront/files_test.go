package tlsfront

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// servedCert does a handshake with f for name and returns the leaf it
// got, or the handshake's error.
func servedCert(t testing.TB, addr, name string) (*x509.Certificate, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true}) //nolint:gosec // the test looks at what it got
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// threeApps writes the certificates of a shop (exact and wildcard names),
// a blog and a default app and returns their pairs.
func threeApps(t testing.TB, dir string) (pairs []FilePair, shop, blog, def testCert) {
	shop = newCert(t, "shop", "shop.example.com", "*.shop.example.com")
	blog = newCert(t, "blog", "blog.example.com")
	def = newCert(t, "default", "example.com")
	for _, a := range []struct {
		name  string
		c     testCert
		hosts []string
	}{{"shop", shop, []string{"shop.example.com", "*.shop.example.com"}}, {"blog", blog, []string{"blog.example.com"}}, {"default", def, nil}} {
		cf, kf := a.c.write(t, dir, a.name)
		pairs = append(pairs, FilePair{App: a.name, Hosts: a.hosts, Default: a.hosts == nil, CertFile: cf, KeyFile: kf,
			CertKey: "apps." + a.name + ".tls_cert", KeyKey: "apps." + a.name + ".tls_key"})
	}
	return pairs, shop, blog, def
}

// TestFileCertsByName checks that each handshake gets its app's
// certificate by server name, as the Router matches hosts: exact, the
// longest wildcard, else the default (also without SNI); and what
// HasCertificate says for each.
func TestFileCertsByName(t *testing.T) {
	pairs, shop, blog, def := threeApps(t, t.TempDir())
	fc, err := NewFileCerts(pairs, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	f := startFront(t, protoHandler, &Chain{Sources: []CertSource{fc}})
	for _, tt := range []struct {
		name string
		want testCert
	}{
		{"shop.example.com", shop}, {"SHOP.example.com", shop}, {"a.b.shop.example.com", shop},
		{"blog.example.com", blog}, {"example.com", def}, {"other.org", def}, {"", def},
	} {
		got, err := servedCert(t, f.addr, tt.name)
		if err != nil {
			t.Errorf("%q: %v", tt.name, err)
			continue
		}
		if got.Subject.CommonName != tt.want.cert.Subject.CommonName {
			t.Errorf("%q: got the certificate of %q, want %q's", tt.name, got.Subject.CommonName, tt.want.cert.Subject.CommonName)
		}
	}
	for name, want := range map[string]bool{
		"shop.example.com": true, "x.shop.example.com": true, "blog.example.com.": true,
		"example.com": true, // the default certificate is valid for it
		"other.org":   false, "127.0.0.1": false,
		// Routed to shop by its wildcard, but *.shop.example.com covers
		// one label only: a redirect to https would end in a name error.
		"a.b.shop.example.com": false,
	} {
		if got := fc.HasCertificate(name); got != want {
			t.Errorf("HasCertificate(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestNoCertificate checks that without a default certificate a name no
// app has fails the handshake, and the chain says which name.
func TestNoCertificate(t *testing.T) {
	pairs, _, _, _ := threeApps(t, t.TempDir())
	fc, err := NewFileCerts(pairs[:2], testLogger())
	if err != nil {
		t.Fatal(err)
	}
	c := &Chain{Sources: []CertSource{fc}}
	if _, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.org"}); err == nil || !strings.Contains(err.Error(), `"other.org"`) {
		t.Errorf("got %v, want an error naming other.org", err)
	}
	f := startFront(t, protoHandler, c)
	if _, err := servedCert(t, f.addr, "other.org"); err == nil {
		t.Error("handshake for a name without certificate succeeded")
	}
}

// TestFileCertsBadPair checks that a pair that does not load at start is
// an error naming the app, the key and the file.
func TestFileCertsBadPair(t *testing.T) {
	dir := t.TempDir()
	pairs, _, _, _ := threeApps(t, dir)
	// The blog's key with the shop's certificate.
	writeFile(t, pairs[1].KeyFile, newCert(t, "x", "x").keyPEM)
	_, err := NewFileCerts(pairs, testLogger())
	if err == nil {
		t.Fatal("a mismatched pair loaded")
	}
	for _, want := range []string{"app blog", "apps.blog.tls_cert", pairs[1].CertFile, "apps.blog.tls_key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	pairs[1].CertFile = filepath.Join(dir, "missing.crt")
	if _, err := NewFileCerts(pairs, testLogger()); err == nil || !strings.Contains(err.Error(), "apps.blog.tls_cert") || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestFileCertsReload checks that a certificate renewed on disk is served
// after the next Check without a restart, and that a pair that no longer
// loads keeps the certificate served before while the others renew.
func TestFileCertsReload(t *testing.T) {
	dir := t.TempDir()
	pairs, shop, blog, _ := threeApps(t, dir)
	fc, err := NewFileCerts(pairs, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	f := startFront(t, protoHandler, &Chain{Sources: []CertSource{fc}})
	serial := func(name string) string {
		t.Helper()
		c, err := servedCert(t, f.addr, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c.SerialNumber.String()
	}
	if got := serial("shop.example.com"); got != shop.cert.SerialNumber.String() {
		t.Fatalf("shop served serial %s, want %s", got, shop.cert.SerialNumber)
	}

	shop2 := newCert(t, "shop", "shop.example.com")
	shop2.write(t, dir, "shop")
	// The blog's certificate is replaced by garbage at the same time.
	writeFile(t, pairs[1].CertFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	fc.Check()
	if got := serial("shop.example.com"); got != shop2.cert.SerialNumber.String() {
		t.Errorf("after renewal shop served serial %s, want the new %s", got, shop2.cert.SerialNumber)
	}
	if got := serial("blog.example.com"); got != blog.cert.SerialNumber.String() {
		t.Errorf("after a bad write blog served serial %s, want the old %s", got, blog.cert.SerialNumber)
	}
	if !fc.HasCertificate("blog.example.com") {
		t.Error("the blog lost its certificate with a bad write")
	}

	// Fixed later: served.
	blog2 := newCert(t, "blog", "blog.example.com")
	blog2.write(t, dir, "blog")
	fc.Check()
	if got := serial("blog.example.com"); got != blog2.cert.SerialNumber.String() {
		t.Errorf("after the fix blog served serial %s, want %s", got, blog2.cert.SerialNumber)
	}
}

// TestChallenge checks the seam for ACME's TLS-ALPN-01: a hello offering
// only "acme-tls/1" gets the Challenge source's certificate with that
// protocol, then the connection is closed; other hellos are unaffected.
func TestChallenge(t *testing.T) {
	app := newCert(t, "app", "shop.example.com")
	challenge := newCert(t, "challenge", "shop.example.com")
	chain := defaultChain(t, app)
	kp, err := tls.X509KeyPair(challenge.certPEM, challenge.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	chain.Challenge = sourceFunc(func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if h.ServerName == "shop.example.com" {
			return &kp, nil
		}
		return nil, nil
	})
	f := startFront(t, protoHandler, chain)
	conn, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: "shop.example.com", NextProtos: []string{ALPNChallenge}, InsecureSkipVerify: true}) //nolint:gosec // as an ACME validator
	if err != nil {
		t.Fatal(err)
	}
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != ALPNChallenge || st.PeerCertificates[0].Subject.CommonName != "challenge" {
		t.Errorf("challenge hello: protocol %q, certificate %q", st.NegotiatedProtocol, st.PeerCertificates[0].Subject.CommonName)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the challenge connection stayed open")
	}
	conn.Close()
	if _, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: "other.org", NextProtos: []string{ALPNChallenge}, InsecureSkipVerify: true}); err == nil { //nolint:gosec // as an ACME validator
		t.Error("a challenge hello for a name without challenge succeeded")
	}
	got, err := servedCert(t, f.addr, "shop.example.com")
	if err != nil || got.Subject.CommonName != "app" {
		t.Errorf("ordinary hello: %v, %v", got, err)
	}
}

type sourceFunc func(*tls.ClientHelloInfo) (*tls.Certificate, error)

func (f sourceFunc) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return f(h) }

// oneName is a CertSource with a certificate for one name, as the ACME
// Manager has for the names it manages.
type oneName struct {
	name string
	cert tls.Certificate
}

func (o oneName) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if normalName(hello.ServerName) != o.name {
		return nil, nil
	}
	return &o.cert, nil
}

// TestDefaultFileCertLeavesOtherSources checks that the default app's
// certificate file does not hide the certificate a later source (ACME)
// has for another app's name, and still serves the names no source has
// and the clients without SNI.
func TestDefaultFileCertLeavesOtherSources(t *testing.T) {
	pairs, shop, _, def := threeApps(t, t.TempDir())
	fc, err := NewFileCerts(pairs, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	other := newCert(t, "acme", "acme.example.org")
	pair, err := tls.X509KeyPair(other.certPEM, other.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	f := startFront(t, protoHandler, &Chain{Sources: []CertSource{fc, oneName{"acme.example.org", pair}}})
	for _, tt := range []struct {
		name string
		want testCert
	}{
		{"acme.example.org", other}, {"ACME.example.org.", other}, {"shop.example.com", shop},
		{"example.com", def}, {"other.org", def}, {"", def},
	} {
		got, err := servedCert(t, f.addr, tt.name)
		if err != nil {
			t.Errorf("%q: %v", tt.name, err)
			continue
		}
		if got.Subject.CommonName != tt.want.cert.Subject.CommonName {
			t.Errorf("%q: got the certificate of %q, want %q's", tt.name, got.Subject.CommonName, tt.want.cert.Subject.CommonName)
		}
	}
}
