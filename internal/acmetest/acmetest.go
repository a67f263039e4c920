// Package acmetest runs Pebble, Let's Encrypt's ACME test server, for
// tests: a real ACME CA on loopback that validates HTTP-01 and TLS-ALPN-01
// challenges by connecting to the test's own listeners, with its DNS
// answered by pebble-challtestsrv (every name is 127.0.0.1), so no test
// needs the internet.
//
// Pebble and pebble-challtestsrv are Go programs, tool dependencies of
// cutover's go.mod: the first Start builds both into a temporary directory
// with `go build` (from the build cache after the first time). A package
// using it calls Main from TestMain, which removes that directory after
// the tests:
//
//	func TestMain(m *testing.M) { acmetest.Main(m) }
//
// Each Pebble has its own ports, its own TLS certificate (made here;
// RootsFile is the PEM to trust for talking to it, tls.ca_root) and its
// own issuing root (IssuerRoots, fetched from its management interface, is
// what a client trusts for the certificates it issues). Pebble keeps
// everything in memory: stopped and started again, it is a new CA with a
// new root that knows no account.
package acmetest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/freeport"
)

// startTimeout bounds building the binaries plus Pebble answering.
const startTimeout = 3 * time.Minute

var (
	mu       sync.Mutex
	binDir   string // where pebble and pebble-challtestsrv were built
	buildErr error
)

// Main runs the tests of m, then removes the built binaries, and exits
// with the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes the built binaries: for a TestMain that cannot call
// Main, after its tests ran.
func Cleanup() {
	mu.Lock()
	if binDir != "" {
		os.RemoveAll(binDir) // a temporary directory: nothing to report
		binDir = ""
	}
	mu.Unlock()
}

// binaries builds pebble and pebble-challtestsrv once per test process.
func binaries() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if binDir != "" || buildErr != nil {
		return binDir, buildErr
	}
	dir, err := os.MkdirTemp("", "acmetest-")
	if err != nil {
		buildErr = err
		return "", err
	}
	for _, tool := range []string{"pebble", "pebble-challtestsrv"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, tool), "github.com/letsencrypt/pebble/v2/cmd/"+tool)
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			buildErr = fmt.Errorf("build %s (a tool dependency in go.mod; `go mod download` needs the module proxy once): %v\n%s", tool, err, out)
			return "", buildErr
		}
	}
	binDir = dir
	return dir, nil
}

// Config says how Pebble validates and issues.
type Config struct {
	// HTTPPort and TLSPort are where Pebble connects to validate HTTP-01
	// and TLS-ALPN-01 challenges, on 127.0.0.1: the ports of the test's
	// plain and TLS listeners.
	HTTPPort, TLSPort int
	// Validity of the certificates issued. 0: 90 days.
	Validity time.Duration
	// Blocked names are refused by Pebble (rejectedIdentifier).
	Blocked []string
}

// Pebble is one Pebble CA with its DNS server.
type Pebble struct {
	// DirectoryURL is the ACME directory URL (tls.ca).
	DirectoryURL string
	// RootsFile is a PEM file of the certificate Pebble's HTTPS listener
	// uses (tls.ca_root).
	RootsFile string

	t       testing.TB
	dir     string
	cfgPath string
	mgmt    string // host:port of the management interface
	dnsAddr string // host:port of challtestsrv's DNS
	dnsMgmt string
	roots   *x509.CertPool // for Pebble's own listeners

	cmds []*exec.Cmd // running: challtestsrv, pebble
	log  *lockedBuffer
}

// New prepares a Pebble for c, on ports of its own, without starting it:
// its DirectoryURL and RootsFile are known, so a client can be configured
// for a CA that is down. t.Cleanup stops it.
func New(t testing.TB, c Config) *Pebble {
	t.Helper()
	dir := t.TempDir()
	p := &Pebble{t: t, dir: dir, log: &lockedBuffer{}}
	ports := make([]int, 4)
	for i := range ports {
		n, err := freeport.Pick()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = n
	}
	listen := "127.0.0.1:" + strconv.Itoa(ports[0])
	p.mgmt = "127.0.0.1:" + strconv.Itoa(ports[1])
	p.dnsAddr = "127.0.0.1:" + strconv.Itoa(ports[2])
	p.dnsMgmt = "127.0.0.1:" + strconv.Itoa(ports[3])
	p.DirectoryURL = "https://" + listen + "/dir"

	certPEM, keyPEM := selfSigned(t)
	p.RootsFile = filepath.Join(dir, "pebble-https-root.pem")
	write(t, p.RootsFile, certPEM)
	write(t, filepath.Join(dir, "key.pem"), keyPEM)
	p.roots = x509.NewCertPool()
	p.roots.AppendCertsFromPEM(certPEM)

	validity := c.Validity
	if validity == 0 {
		validity = 90 * 24 * time.Hour
	}
	blocked := c.Blocked
	if blocked == nil {
		blocked = []string{}
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        p.mgmt,
		"certificate":                    p.RootsFile,
		"privateKey":                     filepath.Join(dir, "key.pem"),
		"httpPort":                       c.HTTPPort,
		"tlsPort":                        c.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"domainBlocklist":                blocked,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description":    "test",
			"validityPeriod": int(validity / time.Second),
		}},
	}}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p.cfgPath = filepath.Join(dir, "pebble.json")
	write(t, p.cfgPath, b)
	t.Cleanup(p.Stop)
	return p
}

// Start builds the binaries if needed, starts the DNS server and Pebble,
// and waits until Pebble answers its directory.
func (p *Pebble) Start() {
	p.t.Helper()
	if len(p.cmds) > 0 {
		p.t.Fatal("acmetest: Pebble already started")
	}
	bin, err := binaries()
	if err != nil {
		p.t.Fatal(err)
	}
	dns := exec.Command(filepath.Join(bin, "pebble-challtestsrv"),
		"-management", p.dnsMgmt, "-dnsserver", p.dnsAddr,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	pebble := exec.Command(filepath.Join(bin, "pebble"), "-config", p.cfgPath, "-dnsserver", p.dnsAddr)
	pebble.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce errors
		"PEBBLE_AUTHZREUSE=0",      // every order validates anew
	)
	for _, cmd := range []*exec.Cmd{dns, pebble} {
		cmd.Stdout, cmd.Stderr = p.log, p.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			p.Stop()
			p.t.Fatalf("acmetest: start %s: %v", cmd.Path, err)
		}
		p.cmds = append(p.cmds, cmd)
	}
	client := p.client()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(p.DirectoryURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			p.Stop()
			p.t.Fatalf("acmetest: Pebble did not answer %s within %s: %v\n%s", p.DirectoryURL, startTimeout, err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// challtestsrv's DNS is up once its management interface answers.
	for {
		c, err := net.DialTimeout("tcp", p.dnsMgmt, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			p.Stop()
			p.t.Fatalf("acmetest: pebble-challtestsrv did not listen on %s: %v\n%s", p.dnsMgmt, err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills Pebble and its DNS server, if running.
func (p *Pebble) Stop() {
	for _, cmd := range p.cmds {
		cmd.Process.Kill() // an error means it has exited already
		cmd.Wait()         // its status is of no interest: we killed it
	}
	p.cmds = nil
}

// Log returns what Pebble and its DNS server printed.
func (p *Pebble) Log() string { return p.log.String() }

// client is an HTTP client trusting Pebble's own listeners.
func (p *Pebble) client() *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots}},
	}
}

// IssuerRootPEM returns the root Pebble issues under, in PEM, from its
// management interface: what a client trusts for the certificates Pebble
// issues. Pebble makes a new one each time it starts.
func (p *Pebble) IssuerRootPEM() []byte {
	p.t.Helper()
	resp, err := p.client().Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		p.t.Fatalf("acmetest: get Pebble's root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		p.t.Fatalf("acmetest: get Pebble's root: %s %v\n%s", resp.Status, err, b)
	}
	return b
}

// IssuerRoots is IssuerRootPEM as a pool.
func (p *Pebble) IssuerRoots() *x509.CertPool {
	p.t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.IssuerRootPEM()) {
		p.t.Fatal("acmetest: Pebble's root is not PEM")
	}
	return pool
}

// selfSigned makes the certificate of Pebble's HTTPS listeners, for
// 127.0.0.1 and localhost.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "acmetest Pebble"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer collects the output of the processes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
