package config

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
)

// The ACME directories of Let's Encrypt: TLS.Directory gives LEProduction
// for an empty tls.ca and LEStaging for "staging".
const (
	LEProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LEStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// The ACME challenge types tls.challenges may list.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// TLS ([tls]) configures the certificates cutover obtains from an ACME
// certificate authority for the host names of its apps (see
// docs/tls.md). The table is shared by every app.
type TLS struct {
	// ACME (key acme) obtains and renews certificates from the CA in CA for
	// every exact host name of every app. false turns ACME off: only the
	// certificates given as files are served. Default true.
	ACME bool `toml:"acme"`

	// Email (key email) is given to the CA with the ACME account, for its
	// notices about the account and its certificates. Default empty (an
	// account without contact).
	Email string `toml:"email"`

	// CA (key ca) is the ACME directory URL of the certificate authority:
	// https://… (step-ca: "https://ca.internal:9000/acme/acme/directory"),
	// or "staging" for Let's Encrypt's staging directory, whose
	// certificates no browser trusts but whose rate limits are far higher
	// (for trying a setup). Default empty: Let's Encrypt's production
	// directory.
	CA string `toml:"ca"`

	// CARoot (key ca_root) is a PEM file of root certificates to trust, in
	// addition to the system's, when talking to the ACME server: a private
	// CA such as step-ca, whose root the system does not know. Relative to
	// the config file. It is read when the daemon starts (see
	// Config.ACMERoots). Default empty (the system's roots only).
	CARoot string `toml:"ca_root"`

	// Challenges (key challenges) are the ACME challenge types cutover
	// answers: "http-01" (on proxy.listen, which the CA reaches on port
	// 80) and "tls-alpn-01" (on the TLS listener, reached on port 443).
	// Leave out the one whose port the CA cannot reach. Default
	// ["http-01", "tls-alpn-01"].
	Challenges []string `toml:"challenges"`
}

// defaultTLS is the [tls] table of a file that does not have one.
func defaultTLS() TLS {
	return TLS{ACME: true, Challenges: []string{ChallengeHTTP01, ChallengeTLSALPN01}}
}

// Directory returns the ACME directory URL CA stands for.
func (t *TLS) Directory() string {
	switch t.CA {
	case "":
		return LEProduction
	case "staging":
		return LEStaging
	}
	return t.CA
}

// tls checks [tls].
func (v *validator) tls(t *TLS) {
	if t.CA != "" && t.CA != "staging" {
		if msg := checkDirectoryURL(t.CA); msg != "" {
			v.fail("tls.ca", "%s; give the CA's ACME directory URL such as %q, \"staging\" for Let's Encrypt's staging, or leave it out for Let's Encrypt", msg, "https://ca.internal:9000/acme/acme/directory")
		}
	}
	if t.Email != "" && (strings.Count(t.Email, "@") != 1 || strings.HasPrefix(t.Email, "@") || strings.HasSuffix(t.Email, "@") || strings.ContainsAny(t.Email, " \t<>,;")) {
		v.fail("tls.email", "must be one email address such as %q, got %q", "ops@example.com", t.Email)
	}
	if t.CARoot != "" && strings.TrimSpace(t.CARoot) == "" {
		v.fail("tls.ca_root", "must be the path of a PEM file, got %q", t.CARoot)
	}
	if len(t.Challenges) == 0 {
		v.fail("tls.challenges", `must list at least one of "http-01" and "tls-alpn-01" (to turn ACME off, set acme = false)`)
	}
	for i, c := range t.Challenges {
		if c != ChallengeHTTP01 && c != ChallengeTLSALPN01 {
			v.fail("tls.challenges", `entry %d must be "http-01" or "tls-alpn-01", got %q`, i+1, c)
		} else if slices.Index(t.Challenges, c) != i {
			v.fail("tls.challenges", "entry %d (%q) is listed twice", i+1, c)
		}
	}
}

// checkDirectoryURL says what is wrong with an ACME directory URL, or "".
func checkDirectoryURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("is not a URL (%v)", err)
	}
	if u.Scheme != "https" {
		return fmt.Sprintf("must be an https:// URL (ACME requires TLS), got %q", s)
	}
	if u.Host == "" {
		return fmt.Sprintf("has no host, got %q", s)
	}
	return ""
}

// ACMERoots reads tls.ca_root: the roots to trust for the ACME server
// besides the system's. It returns nil and no error when ca_root is empty.
// Its errors are *Error naming the config file, the key and the PEM file,
// and saying what the file must hold.
func (c *Config) ACMERoots() (*x509.CertPool, error) {
	path := c.TLS.CARoot
	if path == "" {
		return nil, nil
	}
	fail := func(format string, args ...any) error {
		return &Error{File: c.Path, Field: "tls.ca_root", Msg: fmt.Sprintf(format, args...)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fail("%s does not exist; give the PEM file of your ACME CA's root certificate (step-ca: `step ca root root.pem`)", path)
		}
		return nil, fail("cannot read %s: %v", path, unwrapPath(err))
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots: the file's alone
	}
	n := 0
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue // a key or parameters next to the roots: not ours to read
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fail("%s: certificate %d does not parse: %v", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		what := "no PEM block"
		if bytes.Contains(data, []byte("-----BEGIN")) {
			what = `no "CERTIFICATE" PEM block`
		}
		return nil, fail("%s holds %s; it must hold the CA's root certificate(s) in PEM (-----BEGIN CERTIFICATE-----)", path, what)
	}
	return pool, nil
}

// exampleTLS is the [tls] table of the examples `cutover init` writes.
const exampleTLS = `[tls]
# Certificates for every app's host names from an ACME CA (Let's Encrypt
# by default), obtained and renewed by cutover; false serves only the
# certificates given as files. Default true.
# acme = true

# Given to the CA with the account, for its notices. Default empty.
# email = "ops@example.com"

# The CA's ACME directory URL; "staging" is Let's Encrypt's staging (far
# higher rate limits, certificates no browser trusts). Default empty: Let's
# Encrypt's production.
# ca = "https://ca.internal:9000/acme/acme/directory"

# PEM file of root certificates to trust for the ACME server besides the
# system's (a private CA such as step-ca). Relative to this file. Default
# empty.
# ca_root = "step-ca-root.pem"

# Challenges answered: "http-01" on proxy.listen (the CA comes to port 80),
# "tls-alpn-01" on the TLS listener (port 443). Default both.
# challenges = ["http-01", "tls-alpn-01"]

`
