package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/acmetest"
	"github.com/cutover/cutover/internal/config"
)

var (
	onlyHTTP = []string{config.ChallengeHTTP01}
	onlyALPN = []string{config.ChallengeTLSALPN01}
	both     = []string{config.ChallengeHTTP01, config.ChallengeTLSALPN01}
)

// TestIssueThroughBothChallenges has Pebble issue two names, one validated
// by HTTP-01 only and one by TLS-ALPN-01 only, while a third name Pebble
// refuses fails on its own; Go's client and curl then get each name's
// chain over HTTP/2.
func TestIssueThroughBothChallenges(t *testing.T) {
	f := startFront(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort, Blocked: []string{"blocked.cutover.test"}})
	p.Start()
	viaHTTP, _ := newManager(t, f, p, t.TempDir(), onlyHTTP, Options{})
	viaALPN, _ := newManager(t, f, p, t.TempDir(), onlyALPN, Options{})
	f.use(viaHTTP, viaALPN)
	viaHTTP.Manage([]string{"http.cutover.test", "blocked.cutover.test"})
	viaALPN.Manage([]string{"ALPN.cutover.test."})

	waitFor(t, 60*time.Second, "both certificates", func() bool {
		return viaHTTP.HasCertificate("http.cutover.test") && viaALPN.HasCertificate("alpn.cutover.test")
	})
	if n := f.httpChallenges.Load(); n == 0 {
		t.Error("no HTTP-01 challenge was answered")
	}
	if n := f.alpnHellos.Load(); n == 0 {
		t.Error("no TLS-ALPN-01 challenge was answered")
	}
	waitFor(t, 30*time.Second, "the blocked name's failure", func() bool {
		s := viaHTTP.Status()
		return len(s) == 2 && s[0].Name == "blocked.cutover.test" && s[0].LastError != ""
	})
	st := viaHTTP.Status()
	if b := st[0]; b.State != Waiting || !strings.Contains(b.LastError, "rejectedIdentifier") || b.NextAttempt.IsZero() {
		t.Errorf("blocked name: got %+v, want waiting with a rejectedIdentifier error and a next attempt", b)
	}
	if h := st[1]; h.State != Issued || h.NotAfter.Before(time.Now().Add(80*24*time.Hour)) {
		t.Errorf("http name: got %+v, want issued for 90 days", h)
	}
	if viaHTTP.HasCertificate("blocked.cutover.test") {
		t.Error("HasCertificate(blocked) = true")
	}

	roots := p.IssuerRoots()
	for _, name := range []string{"http.cutover.test", "alpn.cutover.test"} {
		leaf, err := f.served(t, roots, name)
		if err != nil {
			t.Fatalf("%s: handshake: %v", name, err)
		}
		if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", name, leaf.PublicKey)
		}
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		body, proto, err := get(f.client(roots, true), f.url(name))
		if err != nil {
			t.Fatalf("%s: GET: %v", name, err)
		}
		if want := strings.TrimSuffix(strings.TrimPrefix(f.url(name), "https://"), "/") + " HTTP/2.0"; body != want || proto != "HTTP/2.0" {
			t.Errorf("%s: got %q over %s, want %q", name, body, proto, want)
		}
	}

	t.Run("curl", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("curl is not installed (.ci/run installs it)")
			}
			t.Skip("curl is not installed")
		}
		rootFile := filepath.Join(t.TempDir(), "root.pem")
		writeFile(t, rootFile, p.IssuerRootPEM())
		for _, name := range []string{"http.cutover.test", "alpn.cutover.test"} {
			out, err := exec.Command(curl, "-sS", "--http2", "--max-time", "10", "--cacert", rootFile,
				"--resolve", name+":"+itoa(f.tlsPort)+":127.0.0.1", "-w", " %{http_version}", f.url(name)).CombinedOutput()
			if err != nil {
				t.Fatalf("curl %s: %v\n%s", name, err, out)
			}
			if want := name + ":" + itoa(f.tlsPort) + " HTTP/2.0 2"; string(out) != want {
				t.Errorf("curl %s: got %q, want %q", name, out, want)
			}
		}
	})
}

// TestRenewalUnderLoad has Pebble issue certificates valid for 30 seconds,
// renewed by certmagic's maintenance, while clients make new TLS
// connections and keep-alive requests all along: the certificate served
// changes, and no handshake or request fails.
func TestRenewalUnderLoad(t *testing.T) {
	f := startFront(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort, Validity: 30 * time.Second})
	p.Start()
	m, _ := newManager(t, f, p, t.TempDir(), both, Options{RenewCheckInterval: time.Second})
	f.use(m)
	const name = "renew.cutover.test"
	m.Manage([]string{name})
	waitFor(t, 60*time.Second, "the first certificate", func() bool { return m.HasCertificate(name) })
	roots := p.IssuerRoots()
	first, err := f.served(t, roots, name)
	if err != nil {
		t.Fatal(err)
	}

	// Load: 2 clients with a new connection per request, 2 keeping theirs,
	// until the served certificate changed and 2 seconds more, at most 90
	// seconds, each request 20ms apart.
	var (
		stop, fresh, kept atomic.Int64
		failed            atomic.Int64
		errMu             sync.Mutex
		firstErr          error
		wg                sync.WaitGroup
	)
	for i := range 4 {
		keep := i%2 == 0
		c := f.client(roots, keep)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for stop.Load() == 0 {
				if _, _, err := get(c, f.url(name)); err != nil {
					failed.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
				} else if keep {
					kept.Add(1)
				} else {
					fresh.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	deadline := time.Now().Add(90 * time.Second)
	var renewed bool
	for time.Now().Before(deadline) {
		leaf, err := f.served(t, roots, name)
		if err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = true
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	stop.Store(1)
	wg.Wait()
	t.Logf("requests: %d on new connections, %d kept alive, %d failed", fresh.Load(), kept.Load(), failed.Load())
	if !renewed {
		t.Fatalf("the certificate served (serial %x, expiring %s) was not renewed", first.SerialNumber, first.NotAfter)
	}
	if time.Now().After(first.NotAfter) {
		t.Errorf("renewed only after the first certificate expired at %s", first.NotAfter)
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed during the renewal; first: %v", n, firstErr)
	}
	if fresh.Load() == 0 || kept.Load() == 0 {
		t.Error("the load made no requests")
	}
	if s := m.Status(); s[0].State != Issued || s[0].LastError != "" {
		t.Errorf("status after renewal: %+v", s[0])
	}
}

// TestCADownAtStart starts a Manager while its CA is down: the name waits,
// a handshake for it fails at once saying what it waits for, the plain
// listener still serves, and once the CA comes up the certificate is
// issued without a restart.
func TestCADownAtStart(t *testing.T) {
	f := startFront(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort})
	m, logs := newManager(t, f, p, t.TempDir(), both, Options{RetryIntervals: []time.Duration{500 * time.Millisecond, time.Second}})
	f.use(m)
	const name = "late.cutover.test"
	m.Manage([]string{name})
	waitFor(t, 10*time.Second, "a failed attempt", func() bool { return m.Status()[0].Attempts > 0 })

	if m.HasCertificate(name) {
		t.Error("HasCertificate = true with the CA down")
	}
	start := time.Now()
	c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
	var nr *NotReadyError
	if c != nil || !errors.As(err, &nr) {
		t.Fatalf("GetCertificate: got %v, %v; want a *NotReadyError", c, err)
	}
	for _, want := range []string{name + ": waiting for a certificate from " + p.DirectoryURL, "connection refused", "next attempt at"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("GetCertificate's error %q does not say %q", err, want)
		}
	}
	if _, err := f.served(t, nil, name); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("handshake with the CA down: got %v after %s, want a quick failure", err, time.Since(start))
	}
	if body, _, err := get(&http.Client{Timeout: 5 * time.Second}, "http://"+f.httpAddr+"/"); err != nil || body != f.httpAddr+" HTTP/1.1" {
		t.Errorf("plain listener: got %q, %v", body, err)
	}
	for _, want := range []string{"no certificate for host", "host=" + name, "next_attempt_in=", "connection refused"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs.String())
		}
	}

	p.Start()
	waitFor(t, 30*time.Second, "the certificate once the CA is up", func() bool { return m.HasCertificate(name) })
	if _, err := f.served(t, p.IssuerRoots(), name); err != nil {
		t.Errorf("handshake once issued: %v", err)
	}
	if s := m.Status()[0]; s.State != Issued || s.LastError != "" || !s.NextAttempt.IsZero() {
		t.Errorf("status once issued: %+v", s)
	}
}

// TestStoredCertificateSurvivesRestart closes a Manager that obtained a
// certificate and starts another on the same data dir with the CA down:
// it serves the same certificate from storage, asking the CA nothing, from
// the moment Manage returns.
func TestStoredCertificateSurvivesRestart(t *testing.T) {
	f := startFront(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort})
	p.Start()
	dataDir := t.TempDir()
	first, _ := newManager(t, f, p, dataDir, both, Options{})
	f.use(first)
	const name = "keep.cutover.test"
	first.Manage([]string{name})
	waitFor(t, 60*time.Second, "the certificate", func() bool { return first.HasCertificate(name) })
	roots := p.IssuerRoots()
	before, err := f.served(t, roots, name)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	p.Stop()

	f.mu.Lock()
	f.managers = nil
	f.mu.Unlock()
	second, logs := newManager(t, f, p, dataDir, both, Options{RetryIntervals: []time.Duration{time.Hour}})
	f.use(second)
	second.Manage([]string{name})
	// At once: a new daemon (an upgrade's) takes handshakes from the
	// shared socket as soon as it is ready, which is after Manage.
	if !second.HasCertificate(name) {
		t.Error("the stored certificate is not served as soon as Manage returned")
	}
	after, err := f.served(t, roots, name)
	if err != nil {
		t.Fatal(err)
	}
	if after.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Errorf("serial after restart %x, want the stored %x", after.SerialNumber, before.SerialNumber)
	}
	if !strings.Contains(logs.String(), "certificate stored") {
		t.Errorf("log does not say the certificate came from storage:\n%s", logs.String())
	}
	matches, _ := filepath.Glob(filepath.Join(dataDir, "acme", "certificates", "*", name, name+".crt"))
	if len(matches) != 1 {
		t.Errorf("certificate files under %s: %q", filepath.Join(dataDir, "acme"), matches)
	}
}

// TestNoPrompt obtains a certificate with no tls.email: nothing is asked
// on the terminal. certmagic's synchronous obtain, meant for a person at
// a terminal, prompts for an email address on standard input, which would
// hang a daemon started from a shell.
func TestNoPrompt(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	printed := make(chan string)
	go func() {
		b, _ := io.ReadAll(r) // until w closes
		printed <- string(b)
	}()
	defer func() {
		os.Stdout = stdout
		w.Close()
		if out := <-printed; out != "" {
			t.Errorf("printed on standard output: %q", out)
		}
	}()

	f := startFront(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort})
	p.Start()
	m, _ := newManager(t, f, p, t.TempDir(), both, Options{})
	f.use(m)
	m.Manage([]string{"quiet.cutover.test"})
	waitFor(t, 60*time.Second, "the certificate", func() bool { return m.HasCertificate("quiet.cutover.test") })
}

// TestManageReload changes the set of names: a dropped name is no longer
// answered, a wildcard and an IP address are skipped, a new name starts
// waiting.
func TestManageReload(t *testing.T) {
	f := startFront(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort}) // never started
	m, logs := newManager(t, f, p, t.TempDir(), both, Options{RetryIntervals: []time.Duration{time.Hour}})
	m.Manage([]string{"a.cutover.test", "*.cutover.test"})
	m.Manage([]string{"b.cutover.test", "*.cutover.test", "B.cutover.test", "203.0.113.5"})

	var got []string
	for _, s := range m.Status() {
		got = append(got, s.Name+" "+s.State.String())
	}
	if want := "*.cutover.test skipped, 203.0.113.5 skipped, b.cutover.test waiting"; strings.Join(got, ", ") != want {
		t.Errorf("status: got %q, want %q", strings.Join(got, ", "), want)
	}
	for _, name := range []string{"a.cutover.test", "x.cutover.test", "other.example"} {
		if c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: name}); c != nil || err != nil {
			t.Errorf("GetCertificate(%s) of a name not managed: got %v, %v; want nil, nil", name, c, err)
		}
	}
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "b.cutover.test"}); err == nil {
		t.Error("GetCertificate(b) without a certificate: no error")
	}
	if !strings.Contains(logs.String(), "wildcard host skipped") {
		t.Errorf("log does not say the wildcard was skipped:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "IP address host skipped") || m.HasCertificate("203.0.113.5") {
		t.Errorf("an IP address host: HasCertificate %v, log:\n%s", m.HasCertificate("203.0.113.5"), logs.String())
	}
}

// TestNewErrors checks the errors of New: an unreadable ca_root, and no
// challenge that can be answered.
func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	c := &config.Config{Path: "/srv/cutover.toml", DataDir: dir, TLS: config.TLS{ACME: true, CARoot: filepath.Join(dir, "nope.pem"), Challenges: both}}
	if _, err := New(c, Options{HTTPAddr: "127.0.0.1:80"}); err == nil || !strings.Contains(err.Error(), "tls.ca_root: "+filepath.Join(dir, "nope.pem")+" does not exist") {
		t.Errorf("missing ca_root: got %v", err)
	}
	c.TLS.CARoot = ""
	c.TLS.Challenges = onlyALPN
	_, err := New(c, Options{HTTPAddr: "127.0.0.1:80"})
	if want := `acme: no challenge can be answered: tls.challenges is ["tls-alpn-01"], and there is no TLS listener for tls-alpn-01; list a challenge whose listener runs, or set tls.acme = false`; err == nil || err.Error() != want {
		t.Errorf("no challenge:\n got %v\nwant %s", err, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestUnusableStoredCertificate corrupts one of two stored certificates
// (a certificate beside a key it does not match, as a crash between the
// writes of a renewal can leave): a new Manager sets its files aside and
// obtains a new one, while the other name is served from storage.
func TestUnusableStoredCertificate(t *testing.T) {
	f := startFront(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort})
	p.Start()
	dataDir := t.TempDir()
	first, _ := newManager(t, f, p, dataDir, both, Options{})
	f.use(first)
	names := []string{"good.cutover.test", "bad.cutover.test"}
	first.Manage(names)
	waitFor(t, 60*time.Second, "both certificates", func() bool {
		return first.HasCertificate(names[0]) && first.HasCertificate(names[1])
	})
	roots := p.IssuerRoots()
	good, err := f.served(t, roots, names[0])
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	f.mu.Lock()
	f.managers = nil
	f.mu.Unlock()

	// bad's certificate beside good's key: both files parse, the pair
	// does not match.
	site := func(name string) string {
		m, _ := filepath.Glob(filepath.Join(dataDir, "acme", "certificates", "*", name))
		if len(m) != 1 {
			t.Fatalf("stored site of %s: %q", name, m)
		}
		return m[0]
	}
	key, err := os.ReadFile(filepath.Join(site(names[0]), names[0]+".key"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(site(names[1]), names[1]+".key"), key)

	second, logs := newManager(t, f, p, dataDir, both, Options{RetryIntervals: []time.Duration{time.Hour}})
	f.use(second)
	second.Manage(names)
	waitFor(t, 60*time.Second, "both certificates after the restart", func() bool {
		return second.HasCertificate(names[0]) && second.HasCertificate(names[1])
	})
	if got, err := f.served(t, roots, names[0]); err != nil || got.SerialNumber.Cmp(good.SerialNumber) != 0 {
		t.Errorf("%s: got %v, %v; want the stored certificate", names[0], got, err)
	}
	if _, err := f.served(t, roots, names[1]); err != nil {
		t.Errorf("%s: %v", names[1], err)
	}
	aside, _ := filepath.Glob(site(names[1]) + ".unusable-*")
	if len(aside) != 1 {
		t.Errorf("files set aside: %q", aside)
	}
	if !strings.Contains(logs.String(), "stored certificate unusable") {
		t.Errorf("log does not say the certificate was set aside:\n%s", logs.String())
	}
}

// TestRenewalFailureKeepsServing stops the CA once a 30-second
// certificate is issued: renewal fails, the status and the log say so,
// and the current certificate is still served.
func TestRenewalFailureKeepsServing(t *testing.T) {
	f := startFront(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort, Validity: 30 * time.Second})
	p.Start()
	m, logs := newManager(t, f, p, t.TempDir(), both, Options{RenewCheckInterval: 500 * time.Millisecond})
	f.use(m)
	const name = "stuck.cutover.test"
	m.Manage([]string{name})
	waitFor(t, 60*time.Second, "the certificate", func() bool { return m.HasCertificate(name) })
	roots := p.IssuerRoots()
	before, err := f.served(t, roots, name)
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()

	waitFor(t, 30*time.Second, "a failed renewal in the status", func() bool { return m.Status()[0].LastError != "" })
	s := m.Status()[0]
	if s.State != Issued || !strings.Contains(s.LastError, "connection refused") || !strings.Contains(s.String(), "last renewal failed at") {
		t.Errorf("status: got %+v (%s)", s, s)
	}
	if !m.HasCertificate(name) {
		t.Error("HasCertificate = false after a failed renewal")
	}
	if time.Now().Before(before.NotAfter) {
		after, err := f.served(t, roots, name)
		if err != nil || after.SerialNumber.Cmp(before.SerialNumber) != 0 {
			t.Errorf("after the failed renewal: got %v, %v; want the same certificate", after, err)
		}
	}
	if !strings.Contains(logs.String(), "certificate renewal failed") {
		t.Errorf("log does not say the renewal failed:\n%s", logs.String())
	}
}

// TestExpiredStoredCertificate starts a Manager on a data dir whose
// certificate expired while nothing ran: it is renewed before it is
// served.
func TestExpiredStoredCertificate(t *testing.T) {
	f := startFront(t)
	p := acmetest.New(t, acmetest.Config{HTTPPort: f.httpPort, TLSPort: f.tlsPort, Validity: 5 * time.Second})
	p.Start()
	dataDir := t.TempDir()
	first, _ := newManager(t, f, p, dataDir, both, Options{})
	f.use(first)
	const name = "old.cutover.test"
	first.Manage([]string{name})
	waitFor(t, 60*time.Second, "the certificate", func() bool { return first.HasCertificate(name) })
	roots := p.IssuerRoots()
	before, err := f.served(t, roots, name)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	f.mu.Lock()
	f.managers = nil
	f.mu.Unlock()
	time.Sleep(time.Until(before.NotAfter) + 1500*time.Millisecond)

	second, logs := newManager(t, f, p, dataDir, both, Options{RetryIntervals: []time.Duration{time.Second}})
	f.use(second)
	second.Manage([]string{name})
	waitFor(t, 60*time.Second, "the renewed certificate", func() bool { return second.HasCertificate(name) })
	after, err := f.served(t, roots, name)
	if err != nil {
		t.Fatal(err)
	}
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || !after.NotAfter.After(before.NotAfter) {
		t.Errorf("served serial %x expiring %s; want a new certificate (the stored one, %x, expired %s)", after.SerialNumber, after.NotAfter, before.SerialNumber, before.NotAfter)
	}
	if !strings.Contains(logs.String(), "stored certificate expired; renewing it") {
		t.Errorf("log does not say the stored certificate expired:\n%s", logs.String())
	}
}
