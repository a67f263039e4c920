package acme

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/acmetest"
)

// BenchmarkGetCertificate is the Manager's part of a TLS handshake for a
// name it has a certificate for.
func BenchmarkGetCertificate(b *testing.B) {
	f := startFront(b)
	p := acmetest.New(b, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort})
	p.Start()
	m, _ := newManager(b, f, p, b.TempDir(), both, Options{})
	f.use(m)
	const name = "bench.cutover.test"
	m.Manage([]string{name})
	waitFor(b, 60*time.Second, "the certificate", func() bool { return m.HasCertificate(name) })
	conn := &fakeConn{}
	hello := &tls.ClientHelloInfo{ServerName: name, SupportedProtos: []string{"h2", "http/1.1"}, Conn: conn}
	b.ReportAllocs()
	for b.Loop() {
		if c, err := m.GetCertificate(hello); c == nil || err != nil {
			b.Fatalf("got %v, %v", c, err)
		}
	}
}
