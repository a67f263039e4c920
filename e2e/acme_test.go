package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/acmetest"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// acmeConfig writes a cutover.toml with apps a (a.test) and b (b.test)
// behind a plain and a TLS listener, certificates from the ACME CA p, and
// aFiles (tls_cert/tls_key lines) for app a.
func (e *env) acmeConfig(tlsPort, metricsPort int, p *acmetest.Pebble, aFiles string) {
	e.t.Helper()
	app := func(name, host, more string) string {
		return fmt.Sprintf(`
[apps.%[1]s]
command = "'%[2]s' demo-app"
instances = 2
stop_timeout = "5s"
hosts = [%[3]q]
%[4]s
[apps.%[1]s.health]
path = "/healthz"
interval = "100ms"
timeout = "1s"
healthy_after = 2
unhealthy_after = 2
boot_timeout = "20s"
`, name, bin, host, more)
	}
	cfg := fmt.Sprintf(`data_dir = "data"
[proxy]
listen = "127.0.0.1:%d"
tls_listen = "127.0.0.1:%d"
drain_timeout = "10s"
hold_timeout = "10s"
[metrics]
listen = "127.0.0.1:%d"
[tls]
ca = %q
ca_root = %q
email = "ops@a.test"
`, e.port, tlsPort, metricsPort, p.DirectoryURL, p.RootsFile) + app("a", "a.test", aFiles) + app("b", "b.test", "")
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.client = e.client.App("a")
}

// httpsGet asks https://127.0.0.1:port/ for host (SNI and Host), over
// HTTP/2 when h2, on a connection of its own; it returns the protocol
// and the release that answered.
func httpsGet(port int, host string, roots *x509.CertPool, h2 bool) (proto, version string, err error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host}, ForceAttemptHTTP2: h2, DisableKeepAlives: true}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/", port), nil)
	if err != nil {
		return "", "", err
	}
	req.Host = host
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // the status is what counts
	if resp.StatusCode != http.StatusOK {
		return resp.Proto, "", fmt.Errorf("status %s", resp.Status)
	}
	return resp.Proto, resp.Header.Get("X-App-Version"), nil
}

// TestACMECertificates: two apps, two host names, certificates from a
// real ACME CA (Pebble) through real challenges.
//
// The CA is down when the daemon starts: it serves HTTP for both apps,
// HTTPS for app a, whose certificate is a file, and says in `cutover
// status` what it waits for for b.test, whose handshakes fail at once
// rather than hang. Then the CA comes up, a's file is taken out of the
// config and `cutover reload` starts a daemon that obtains both
// certificates by HTTP-01 or TLS-ALPN-01; Go's client and curl get
// HTTP/2 and the right app over the issued chain, plain HTTP redirects
// to https, and deploys of both apps under HTTPS load (HTTP/2 and
// HTTP/1.1) fail no request.
func TestACMECertificates(t *testing.T) {
	e := newEnv(t, settings{})
	tlsPort, metricsPort := pickPort(t), pickPort(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: e.port, TLSPort: tlsPort})
	fileRoots := selfSignedFor(t, e.dir, "a", "a.test")
	e.acmeConfig(tlsPort, metricsPort, p, "tls_cert = \"a.crt\"\ntls_key = \"a.key\"")
	ca, cb := e.client.App("a"), e.client.App("b")
	a1, a2 := e.release("a1", ""), e.release("a2", "")
	b1, b2 := e.release("b1", ""), e.release("b2", "")
	e.serve()
	ctx := context.Background()
	if _, err := ca.Deploy(ctx, deploy.Request{Source: a1}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Deploy(ctx, deploy.Request{Source: b1}, nil); err != nil {
		t.Fatal(err)
	}

	// The CA is down.
	if proto, v, err := httpsGet(tlsPort, "a.test", fileRoots, true); err != nil || proto != "HTTP/2.0" || v != "a1" {
		t.Errorf("a.test over HTTPS with its file certificate, CA down: %s %q %v", proto, v, err)
	}
	start := time.Now()
	if _, _, err := httpsGet(tlsPort, "b.test", nil, true); err == nil {
		t.Error("b.test over HTTPS with no certificate yet: no error")
	} else if time.Since(start) > 5*time.Second {
		t.Errorf("b.test's handshake took %s to fail: it must not wait for the CA", time.Since(start))
	}
	if code, v, _, err := getHost(e.url("/"), "b.test"); err != nil || code != 200 || v != "b1" {
		t.Errorf("b.test over plain HTTP, CA down: %d %q %v (want 200 from b1: no certificate, no redirect)", code, v, err)
	}
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, e.url("/x"), nil)
	req.Host = "a.test"
	if resp, err := noFollow.Do(req); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if want := fmt.Sprintf("https://a.test:%d/x", tlsPort); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("a.test over plain HTTP: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	out, stderr, code := e.run("status")
	if code != 0 || !strings.Contains(out, "certificates (ACME):") || !strings.Contains(out, "b.test: waiting for a certificate from "+p.DirectoryURL) {
		t.Errorf("status with the CA down: exit %d, want a line saying b.test waits for %s\n%s%s", code, p.DirectoryURL, out, stderr)
	}

	if m := scrapeMetrics(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)); !strings.Contains(m, `cutover_tls_certificate_expiry_timestamp_seconds{host="a.test",source="file"}`) ||
		strings.Contains(m, `host="b.test"`) {
		t.Errorf("certificate metrics with the CA down: want a.test from its file, nothing for b.test:\n%s", grepLines(m, "cutover_tls_"))
	}

	// The CA comes up; a's certificate now comes from it too.
	p.Start()
	e.acmeConfig(tlsPort, metricsPort, p, "")
	if out, stderr, code := e.run("reload"); code != 0 {
		t.Fatalf("reload: exit %d\n%s%s", code, out, stderr)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _, _ = e.run("status")
		if strings.Contains(out, "a.test: issued") && strings.Contains(out, "b.test: issued") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificates from the CA within 60 s:\n%s\ndaemon log:\n%s\npebble:\n%s", out, tail(e.daemonLog(), 40), tail(p.Log(), 40))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if m := scrapeMetrics(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)); !strings.Contains(m, `cutover_tls_certificate_expiry_timestamp_seconds{host="a.test",source="acme"}`) ||
		!strings.Contains(m, `cutover_tls_certificate_expiry_timestamp_seconds{host="b.test",source="acme"}`) {
		t.Errorf("certificate metrics once issued: want a.test and b.test from ACME:\n%s", grepLines(m, "cutover_tls_"))
	}
	roots := p.IssuerRoots()
	for _, c := range []struct {
		host, want string
		h2         bool
	}{{"a.test", "a1", true}, {"b.test", "b1", true}, {"a.test", "a1", false}, {"b.test", "b1", false}} {
		proto, v, err := httpsGet(tlsPort, c.host, roots, c.h2)
		wantProto := "HTTP/1.1"
		if c.h2 {
			wantProto = "HTTP/2.0"
		}
		if err != nil || proto != wantProto || v != c.want {
			t.Errorf("%s over %s with the issued chain: %s %q %v, want %s from %s", c.host, wantProto, proto, v, err, wantProto, c.want)
		}
	}
	if _, err := exec.LookPath("curl"); err == nil {
		rootFile := filepath.Join(e.dir, "pebble-issuer.pem")
		if err := os.WriteFile(rootFile, p.IssuerRootPEM(), 0o644); err != nil {
			t.Fatal(err)
		}
		for host, want := range map[string]string{"a.test": "a1", "b.test": "b1"} {
			cmd := exec.Command("curl", "-sS", "--http2", "--cacert", rootFile, "--max-time", "10",
				"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, tlsPort),
				"-o", "/dev/null", "-D", "-", fmt.Sprintf("https://%s:%d/", host, tlsPort))
			b, err := cmd.CombinedOutput()
			head := strings.ToLower(string(b))
			if err != nil || !strings.HasPrefix(head, "http/2 200") || !strings.Contains(head, "x-app-version: "+want) {
				t.Errorf("curl --http2 https://%s: %v\n%s", host, err, b)
			}
		}
	} else if os.Getenv("CI") != "" {
		t.Error("curl is not installed (.ci/run installs it)")
	}

	// Deploys of both apps under HTTPS load over both protocols.
	loads := map[string][]*load.Generator{}
	for _, host := range []string{"a.test", "b.test"} {
		conf := &tls.Config{RootCAs: roots, ServerName: host}
		url := fmt.Sprintf("https://127.0.0.1:%d/", tlsPort)
		loads[host] = []*load.Generator{
			load.Start(load.Options{URL: url, Host: host, Rate: 75, TLS: conf, HTTP2: true, Timeout: 20 * time.Second, MaxDuration: time.Minute}, host+" h2"),
			load.Start(load.Options{URL: url, Host: host, Rate: 75, FreshShare: 0.3, TLS: conf, Timeout: 20 * time.Second, MaxDuration: time.Minute}, host+" h1"),
		}
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := ca.Deploy(ctx, deploy.Request{Source: a2}, nil); err != nil {
		t.Errorf("deploy a2 under HTTPS load: %v", err)
	}
	if _, err := cb.Deploy(ctx, deploy.Request{Source: b2}, nil); err != nil {
		t.Errorf("deploy b2 under HTTPS load: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	for host, gens := range loads {
		for _, g := range gens {
			rep := g.Stop()
			t.Logf("%s: %d requests, %d failed, versions %v", host, rep.Total.Requests, rep.Total.Failed, rep.Total.Versions)
			if rep.Total.Failed != 0 || rep.Total.Requests == 0 {
				t.Errorf("%s: %d of %d failed: %v", host, rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
			}
			for v := range rep.Total.Versions {
				if v[0] != host[0] {
					t.Errorf("%s was answered by release %q", host, v)
				}
			}
		}
	}
}
