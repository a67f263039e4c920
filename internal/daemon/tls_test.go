package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/freeport"
)

// writeCert writes a self-signed certificate for names and its key into
// dir as name.crt and name.key, and returns the certificate.
func writeCert(t *testing.T, dir, name string, names ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: names, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsConfig writes the config of writeConfig with a TLS listener on a
// free port and the certificate shop.crt (relative to the file), and
// returns it and the TLS port.
func tlsConfig(t *testing.T, root string) (*config.Config, int) {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, root)
	path := filepath.Join(root, "cutover.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "[app.env]", "tls_cert = \"shop.crt\"\ntls_key = \"shop.key\"\nhsts = \"max-age=60\"\n[app.env]", 1)
	s += fmt.Sprintf("tls_listen = \"127.0.0.1:%d\"\nhold_timeout = \"100ms\"\n", port)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, port
}

// TestTLSListener starts a daemon with a TLS listener and a certificate
// file: HTTPS is served over HTTP/2 through the proxy (503 with no
// release yet: the proxy's answer), with HSTS; a plain request for the
// certificate's name is redirected to https on the TLS port, one for
// another name is not; a certificate renewed on disk is served without a
// restart.
func TestTLSListener(t *testing.T) {
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cert := writeCert(t, root, "shop", "shop.example.com")
	cfg, port := tlsConfig(t, root)
	d := start(t, cfg)

	roots := x509.NewCertPool()
	roots.AddCert(cert)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", port)
	c := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasSuffix(addr, ":443") || strings.HasSuffix(addr, fmt.Sprintf(":%d", port)) {
				addr = tlsAddr
			} else {
				addr = d.proxy
			}
			var dl net.Dialer
			return dl.DialContext(ctx, network, addr)
		},
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()

	resp, err := c.Get("https://shop.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) //nolint:errcheck // shown
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(string(body), "cutover:") {
		t.Errorf("HTTPS: %s %d %q, want the proxy's 503 over HTTP/2", resp.Proto, resp.StatusCode, body)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=60" {
		t.Errorf("Strict-Transport-Security %q", got)
	}

	resp, err = c.Get("http://shop.example.com/a?b=c")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("https://shop.example.com:%d/a?b=c", port); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain request: %d Location %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	resp, err = c.Get("http://other.example.org/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("plain request for a name without certificate: %d, want the proxy's 503", resp.StatusCode)
	}

	// A renewed certificate is served without a restart, within the
	// 5 s between two looks at the files.
	renewed := writeCert(t, root, "shop", "shop.example.com")
	deadline := time.Now().Add(waitTimeout)
	for {
		conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "shop.example.com", InsecureSkipVerify: true}) //nolint:gosec // only the serial is looked at
		if err != nil {
			t.Fatal(err)
		}
		got := conn.ConnectionState().PeerCertificates[0].SerialNumber
		conn.Close()
		if got.Cmp(renewed.SerialNumber) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %v %s after the files changed, want %v", got, waitTimeout, renewed.SerialNumber)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTLSBadCertificate checks that a certificate file that does not load
// stops the daemon at start with an error naming the app, the key and the
// file.
func TestTLSBadCertificate(t *testing.T) {
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	writeCert(t, root, "shop", "shop.example.com")
	cfg, _ := tlsConfig(t, root)
	if err := os.WriteFile(filepath.Join(root, "shop.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Run(t.Context(), Options{Config: cfg, Logger: slogDiscard()})
	if err == nil {
		t.Fatal("the daemon started with a key that does not load")
	}
	for _, want := range []string{cfg.Path, "app daemontest", "app.tls_key", filepath.Join(root, "shop.key")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestTLSRedirectHTTPSPort: with proxy.https_port set, redirects to https
// name that port (443: none), not the port the TLS listener listens on —
// what clients behind a port forward need.
func TestTLSRedirectHTTPSPort(t *testing.T) {
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	writeCert(t, root, "shop", "shop.example.com")
	cfg, _ := tlsConfig(t, root)
	cfg.Proxy.HTTPSPort = 443
	d := start(t, cfg)

	req, err := http.NewRequest("GET", "http://"+d.proxy+"/a?b=c", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "shop.example.com"
	c := &http.Client{Timeout: waitTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://shop.example.com/a?b=c"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain request: %d Location %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}
