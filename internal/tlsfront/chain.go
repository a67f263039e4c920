package tlsfront

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// CertSource gives the certificate for a handshake. For a name it has no
// certificate for it answers (nil, nil), so that the Chain asks the next
// source; an error stops the handshake.
type CertSource interface {
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// CertChecker is implemented by a CertSource that can tell, without a
// handshake, whether it has a certificate for a host name (lower case,
// without port or trailing dot). The plain listener asks it to decide
// whether to redirect to https; a source without it is never asked.
type CertChecker interface {
	HasCertificate(name string) bool
}

// FallbackSource is implemented by a CertSource with a certificate for
// the handshakes no source of the chain has one for: the default app's
// certificate files. The chain asks it only after every source, so that
// it never hides a certificate another source (ACME) has for a name.
type FallbackSource interface {
	FallbackCertificate() *tls.Certificate
}

// ALPNChallenge is the protocol of ACME's TLS-ALPN-01 challenge (RFC 8737).
const ALPNChallenge = "acme-tls/1"

// ErrNoCertificate is the handshake error for a name no source has a
// certificate for.
var ErrNoCertificate = errors.New("no certificate for this name")

// Chain asks its sources in order for a handshake's certificate: the first
// one that has one answers. Its fields must not change once it is used.
type Chain struct {
	// Sources are asked in order: files first, then the others.
	Sources []CertSource
	// Challenge, when set, answers the handshakes that offer only the
	// protocol "acme-tls/1" (ACME's TLS-ALPN-01 challenge), and the chain
	// negotiates that protocol for them. nil = such handshakes are served
	// as any other.
	Challenge CertSource
}

// GetCertificate returns the certificate of the first source that has
// one for hello's name, else the first fallback certificate
// (FallbackSource); its signature is tls.Config.GetCertificate's.
func (c *Chain) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	for _, s := range c.Sources {
		cert, err := s.GetCertificate(hello)
		if err != nil {
			return nil, err
		}
		if cert != nil {
			return cert, nil
		}
	}
	for _, s := range c.Sources {
		if fb, ok := s.(FallbackSource); ok {
			if cert := fb.FallbackCertificate(); cert != nil {
				return cert, nil
			}
		}
	}
	if hello.ServerName == "" {
		return nil, fmt.Errorf("%w: the client sent no server name (SNI) and no certificate serves every name", ErrNoCertificate)
	}
	return nil, fmt.Errorf("%w: %q", ErrNoCertificate, hello.ServerName)
}

// HasCertificate reports whether a source that can tell (CertChecker) has
// a certificate for name.
func (c *Chain) HasCertificate(name string) bool {
	for _, s := range c.Sources {
		if ck, ok := s.(CertChecker); ok && ck.HasCertificate(name) {
			return true
		}
	}
	return false
}

// isChallenge reports whether hello is an ACME TLS-ALPN-01 challenge:
// RFC 8737 section 3 has the validator offer "acme-tls/1" alone.
func isChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNChallenge
}

// Config returns the server tls.Config of the chain with cutover's
// defaults (see the package documentation) and the ALPN protocols "h2"
// (unless noH2) and "http/1.1".
func (c *Chain) Config(noH2 bool) *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if noH2 {
		protos = protos[1:]
	}
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       protos,
		GetCertificate:   c.GetCertificate,
	}
	if c.Challenge != nil {
		challenge := cfg.Clone()
		challenge.NextProtos = []string{ALPNChallenge}
		challenge.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := c.Challenge.GetCertificate(hello)
			if err == nil && cert == nil {
				err = fmt.Errorf("no TLS-ALPN-01 challenge under way for %q", hello.ServerName)
			}
			return cert, err
		}
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if isChallenge(hello) {
				return challenge, nil
			}
			return nil, nil
		}
	}
	return cfg
}
