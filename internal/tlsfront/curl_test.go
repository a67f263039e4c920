package tlsfront

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/proxy"
)

// TestCurlHTTP2 checks the TLS listener with a client that is not Go's:
// curl (nghttp2 and OpenSSL) negotiates HTTP/2 by ALPN, trusts the file
// certificate, and gets the app's answer through the proxy; with
// --http1.1 it gets HTTP/1.1. Skipped without a curl that speaks HTTP/2.
func TestCurlHTTP2(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl")
	}
	if v, err := exec.Command(curl, "--version").Output(); err != nil || !strings.Contains(string(v), "HTTP2") {
		t.Skip("curl without HTTP/2")
	}
	p := proxy.New(proxy.Options{App: "shop"})
	p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, named("a"))}).SetHealthy(true)
	p.SetActive("a")
	f, cert := tlsProxy(t, p)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, cert.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{"--http2": "2", "--http1.1": "1.1"} {
		out, err := exec.Command(curl, "-sS", flag, "--cacert", ca,
			"--connect-to", "shop.example.com:443:"+f.addr, "-w", "\n%{http_version}", shopURL).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", flag, err, out)
		}
		if got := string(out); got != "a proto=https\n"+want {
			t.Errorf("curl %s: got %q, want the app's answer over HTTP/%s", flag, got, want)
		}
	}
}
