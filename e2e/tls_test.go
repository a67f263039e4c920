package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// as dir/tls.crt and dir/tls.key and returns a pool trusting it.
func selfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	return selfSignedFor(t, dir, "tls", "localhost")
}

// selfSignedFor writes a self-signed certificate for 127.0.0.1 and the
// DNS name host as dir/NAME.crt and dir/NAME.key and returns a pool
// trusting it.
func selfSignedFor(t *testing.T, dir, name, host string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{host}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
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
	for name, b := range map[string][]byte{
		name + ".crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		name + ".key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c)
	return roots
}

// countingTransport is an HTTPS client transport that counts the
// responses by protocol.
type countingTransport struct {
	tr       *http.Transport
	h2, h1   *atomic.Int64
	wantH2   bool
	mismatch *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.tr.RoundTrip(r)
	if err == nil {
		if resp.ProtoMajor == 2 {
			c.h2.Add(1)
		} else {
			c.h1.Add(1)
		}
		if (resp.ProtoMajor == 2) != c.wantH2 {
			c.mismatch.Add(1)
		}
	}
	return resp, err
}

// TestTLSDeployUnderLoad: the TLS listener with a self-signed file
// certificate, under mixed HTTPS load — HTTP/2 and HTTP/1.1 (a share on
// new connections, each a full handshake) from vegeta at 300 req/s, and
// cookie-keeping clients of both protocols — through a rolling deploy
// and a `cutover upgrade`: no request fails, no cookie-keeping client
// goes back from the new release to the old one, and a plain request is
// redirected to https.
func TestTLSDeployUnderLoad(t *testing.T) {
	tlsPort := pickPort(t)
	e := newEnv(t, settings{
		instances: 4,
		extraApp:  "tls_cert = \"tls.crt\"\ntls_key = \"tls.key\"",
		extra:     fmt.Sprintf("tls_listen = \"127.0.0.1:%d\"\n[deploy]\nstrategy = \"rolling\"\nbatch = 1\n", tlsPort),
	})
	roots := selfSigned(t, e.dir)
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	exe := e.ownBinary()
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	httpsURL := fmt.Sprintf("https://127.0.0.1:%d/", tlsPort)

	// The plain listener redirects: 127.0.0.1 is in the certificate.
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(e.url("/a?b=c"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := httpsURL + "a?b=c"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain request: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	tlsConf := &tls.Config{RootCAs: roots}
	h2 := load.Start(load.Options{URL: httpsURL, Rate: 150, TLS: tlsConf, HTTP2: true, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
	h1 := load.Start(load.Options{URL: httpsURL, Rate: 150, FreshShare: 0.3, TLS: tlsConf, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
	var nH2, nH1, mismatch atomic.Int64
	clients := startStickyClientsWith(httpsURL, 16, func(i int) http.RoundTripper {
		tr := &http.Transport{TLSClientConfig: tlsConf.Clone(), ForceAttemptHTTP2: i%2 == 0}
		if i%2 == 1 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		return countingTransport{tr: tr, h2: &nH2, h1: &nH1, wantH2: i%2 == 0, mismatch: &mismatch}
	})
	time.Sleep(500 * time.Millisecond)
	mark := func(name string) { h2.Mark(name); h1.Mark(name) }

	mark("rolling deploy")
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Errorf("rolling deploy under HTTPS load: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	mark("upgrade")
	installBinary(t, bin, exe)
	if out, errOut, code := e.run("upgrade"); code != 0 {
		t.Errorf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	time.Sleep(500 * time.Millisecond)
	mark("after")
	time.Sleep(300 * time.Millisecond)
	seqs, cerrs := clients.finish()
	t.Log("HTTP/2 load:")
	checkLoad(t, h2.Stop())
	t.Log("HTTP/1.1 load (30% on new connections):")
	checkLoad(t, h1.Stop())
	if len(cerrs) != 0 {
		t.Errorf("cookie-keeping clients: %d failed: %v", len(cerrs), cerrs)
	}
	if m := mismatch.Load(); m != 0 {
		t.Errorf("%d answers came over the other protocol than the client asked for", m)
	}
	moved := 0
	for i, seq := range seqs {
		sawNew := false
		for j, v := range seq {
			if v == "v2" {
				sawNew = true
			}
			if v == "v1" && sawNew {
				t.Errorf("client %d went back from v2 to v1 at answer %d: %v", i, j, seq)
				break
			}
		}
		if len(seq) > 0 && seq[0] == "v1" && seq[len(seq)-1] == "v2" {
			moved++
		}
		if len(seq) == 0 {
			t.Errorf("client %d got no answer", i)
		}
	}
	t.Logf("cookie-keeping clients: %d answers over HTTP/2, %d over HTTP/1.1; %d of %d moved v1→v2", nH2.Load(), nH1.Load(), moved, len(seqs))
}
