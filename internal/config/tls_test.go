package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTLS(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want TLS
		dir  string // Directory()
	}{
		{"defaults", "", TLS{ACME: true, Challenges: []string{"http-01", "tls-alpn-01"}}, LEProduction},
		{"staging", "[tls]\nca = \"staging\"\n", TLS{ACME: true, CA: "staging", Challenges: []string{"http-01", "tls-alpn-01"}}, LEStaging},
		{
			"private CA",
			"[tls]\nemail = \"ops@example.com\"\nca = \"https://ca.internal:9000/acme/acme/directory\"\nca_root = \"certs/root.pem\"\nchallenges = [\"tls-alpn-01\"]\n",
			TLS{ACME: true, Email: "ops@example.com", CA: "https://ca.internal:9000/acme/acme/directory", CARoot: "/srv/shop/certs/root.pem", Challenges: []string{"tls-alpn-01"}},
			"https://ca.internal:9000/acme/acme/directory",
		},
		{"off", "[tls]\nacme = false\n", TLS{ACME: false, Challenges: []string{"http-01", "tls-alpn-01"}}, LEProduction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("cutover.toml", "/srv/shop", []byte(base+tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.TLS); diff != "" {
				t.Errorf("[tls] (-want +got):\n%s", diff)
			}
			if got := c.TLS.Directory(); got != tt.dir {
				t.Errorf("Directory: got %q, want %q", got, tt.dir)
			}
		})
	}
}

func TestParseTLSErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"ca http", "[tls]\nca = \"http://ca.internal/directory\"\n", `cutover.toml:5: tls.ca: must be an https:// URL (ACME requires TLS), got "http://ca.internal/directory"; give the CA's ACME directory URL such as "https://ca.internal:9000/acme/acme/directory", "staging" for Let's Encrypt's staging, or leave it out for Let's Encrypt`},
		{"ca not a URL", "[tls]\nca = \"letsencrypt\"\n", `cutover.toml:5: tls.ca: must be an https:// URL (ACME requires TLS), got "letsencrypt"; give the CA's ACME directory URL such as "https://ca.internal:9000/acme/acme/directory", "staging" for Let's Encrypt's staging, or leave it out for Let's Encrypt`},
		{"ca no host", "[tls]\nca = \"https:///directory\"\n", `cutover.toml:5: tls.ca: has no host, got "https:///directory"; give the CA's ACME directory URL such as "https://ca.internal:9000/acme/acme/directory", "staging" for Let's Encrypt's staging, or leave it out for Let's Encrypt`},
		{"email", "[tls]\nemail = \"ops\"\n", `cutover.toml:5: tls.email: must be one email address such as "ops@example.com", got "ops"`},
		{"no challenges", "[tls]\nchallenges = []\n", `cutover.toml:5: tls.challenges: must list at least one of "http-01" and "tls-alpn-01" (to turn ACME off, set acme = false)`},
		{"dns-01", "[tls]\nchallenges = [\"dns-01\"]\n", `cutover.toml:5: tls.challenges: entry 1 must be "http-01" or "tls-alpn-01", got "dns-01"`},
		{"twice", "[tls]\nchallenges = [\"http-01\", \"http-01\"]\n", `cutover.toml:5: tls.challenges: entry 2 ("http-01") is listed twice`},
		{"typo", "[tls]\ncaroot = \"root.pem\"\n", `cutover.toml:5: tls.caroot: unknown key; did you mean "tls.ca_root"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("cutover.toml", "/srv/shop", []byte(base+tt.doc))
			if err == nil {
				t.Fatalf("parse accepted it: %+v", c.TLS)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// rootPEM returns a self-signed CA certificate in PEM.
func rootPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestACMERoots(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("root.pem", append([]byte("# step-ca root\n"), rootPEM(t)...))
	key := write("key.pem", []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"))
	text := write("notes.txt", []byte("hello\n"))
	broken := write("broken.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))

	c := &Config{Path: "/srv/shop/cutover.toml"}
	if pool, err := c.ACMERoots(); pool != nil || err != nil {
		t.Errorf("no ca_root: got %v, %v; want nil, nil", pool, err)
	}
	c.TLS.CARoot = good
	if pool, err := c.ACMERoots(); pool == nil || err != nil {
		t.Errorf("good ca_root: got %v, %v", pool, err)
	}
	for _, tt := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing.pem"), "/srv/shop/cutover.toml: tls.ca_root: " + filepath.Join(dir, "missing.pem") + " does not exist; give the PEM file of your ACME CA's root certificate (step-ca: `step ca root root.pem`)"},
		{dir, "/srv/shop/cutover.toml: tls.ca_root: cannot read " + dir + ": is a directory"},
		{key, `/srv/shop/cutover.toml: tls.ca_root: ` + key + ` holds no "CERTIFICATE" PEM block; it must hold the CA's root certificate(s) in PEM (-----BEGIN CERTIFICATE-----)`},
		{text, `/srv/shop/cutover.toml: tls.ca_root: ` + text + ` holds no PEM block; it must hold the CA's root certificate(s) in PEM (-----BEGIN CERTIFICATE-----)`},
		{broken, `/srv/shop/cutover.toml: tls.ca_root: ` + broken + `: certificate 1 does not parse: `},
	} {
		c.TLS.CARoot = tt.path
		_, err := c.ACMERoots()
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want an *Error", tt.path, err)
			continue
		}
		if got := err.Error(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.path, got, tt.want)
		}
	}
}
