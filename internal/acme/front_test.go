package acme

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/acmetest"
	"github.com/cutover/cutover/internal/config"
)

func TestMain(m *testing.M) { acmetest.Main(m) }

// front is what the daemon's listeners do with a Manager, built from
// net/http and crypto/tls: a plain listener answering HTTP-01 challenges
// before anything else, and a TLS listener (HTTP/2 and HTTP/1.1) taking
// its certificates from a chain of Managers. Its handlers answer
// "NAME PROTO".
type front struct {
	httpAddr, tlsAddr string
	httpPort, tlsPort int

	mu       sync.Mutex
	managers []*Manager

	httpChallenges atomic.Int64 // HTTP-01 requests answered
	alpnHellos     atomic.Int64 // acme-tls/1 handshakes answered
}

func startFront(t testing.TB) *front {
	t.Helper()
	f := &front{}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.httpAddr, f.tlsAddr = plainLn.Addr().String(), tlsLn.Addr().String()
	f.httpPort, f.tlsPort = plainLn.Addr().(*net.TCPAddr).Port, tlsLn.Addr().(*net.TCPAddr).Port

	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Host, r.Proto)
	})
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range f.chain() {
			if m.HTTPChallenge(w, r) {
				f.httpChallenges.Add(1)
				return
			}
		}
		app.ServeHTTP(w, r)
	})}
	secure := &http.Server{
		Handler:  app,
		ErrorLog: stdlog.New(io.Discard, "", 0), // failed handshakes are counted by the clients
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1", ALPNProto},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				for _, m := range f.chain() {
					c, err := m.GetCertificate(hello)
					if c != nil || err != nil {
						if c != nil && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNProto {
							f.alpnHellos.Add(1)
						}
						return c, err
					}
				}
				return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
			},
		},
	}
	go plain.Serve(plainLn)
	go secure.ServeTLS(tlsLn, "", "")
	t.Cleanup(func() {
		plain.Close()
		secure.Close()
	})
	return f
}

func (f *front) use(ms ...*Manager) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.managers = append(f.managers, ms...)
}

func (f *front) chain() []*Manager {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.managers
}

// client returns an HTTPS client that trusts roots and dials name:port at
// the front's TLS listener, with HTTP/2.
func (f *front) client(roots *x509.CertPool, keepAlive bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DisableKeepAlives: !keepAlive,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, f.tlsAddr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// url is https://name:port/ of the front's TLS listener.
func (f *front) url(name string) string {
	return "https://" + net.JoinHostPort(name, strconv.Itoa(f.tlsPort)) + "/"
}

// served handshakes with the front for name and returns the certificate
// it serves, verified against roots.
func (f *front) served(t *testing.T, roots *x509.CertPool, name string) (*x509.Certificate, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", f.tlsAddr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// newManager makes a Manager against a Pebble, storing in dataDir,
// logging into buf (and the test log when it fails).
func newManager(t testing.TB, f *front, p *acmetest.Pebble, dataDir string, challenges []string, o Options) (*Manager, *syncBuffer) {
	t.Helper()
	c := &config.Config{
		Path:    filepath.Join(dataDir, "cutover.toml"),
		DataDir: dataDir,
		TLS: config.TLS{
			ACME:       true,
			CA:         p.DirectoryURL,
			CARoot:     p.RootsFile,
			Challenges: challenges,
		},
	}
	buf := &syncBuffer{}
	o.HTTPAddr, o.TLSAddr = f.httpAddr, f.tlsAddr
	o.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		if t.Failed() {
			t.Logf("manager log:\n%s", buf.String())
		}
	})
	return m, buf
}

// waitFor polls cond every 50ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get fetches url with c and returns the body and protocol.
func get(c *http.Client, url string) (string, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), resp.Proto, nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeFile writes b to path, failing the test on error.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeConn is the connection of a ClientHelloInfo made by a test.
type fakeConn struct{ net.Conn }

func (fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }
