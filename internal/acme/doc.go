// Package acme owns the certificates cutover obtains from an ACME
// certificate authority (Let's Encrypt, or a private CA such as step-ca)
// for the host names of its apps: obtaining, storing under
// <data_dir>/acme, renewing, and serving them to the TLS listener.
//
// # The library: certmagic, not autocert
//
// cutover needs what an operator cannot do by hand at 3 a.m.: HTTP-01 and
// TLS-ALPN-01 challenges, renewal well before expiry with backoff when the
// CA fails, OCSP stapling, storage written atomically, one failing name
// never stopping another, a private CA with its own root, and ACME Renewal
// Information (ARI, RFC 9773). The two Go libraries of the field compare
// so (certmagic v0.25.6, golang.org/x/crypto/acme/autocert v0.57.0):
//
//	                             certmagic                 autocert
//	HTTP-01, TLS-ALPN-01         both                      both
//	when certificates are got    at start (Manage), in     on the first handshake
//	                             the background            for a name: it waits
//	renewal                      maintenance loop; ARI     last third of the
//	                             window, else last third   lifetime (at most 30
//	                             of the lifetime           days), no ARI
//	backoff on failure           yes (renewals: 1m … 6h)   none: every 30 minutes
//	OCSP stapling                yes, cached on disk       no
//	storage                      FileStorage: temp file,   DirCache: temp file,
//	                             fsync, rename; locks      rename
//	retry on staging first       yes (Let's Encrypt)       no
//	private CA root              ACMEIssuer.TrustedRoots   a custom http.Client
//	status/events                OnEvent (obtained,        none
//	                             failed, renewal)
//	go.mod                       certmagic, acmez, zap,    x/crypto only
//	                             libdns, zerossl, blake3,
//	                             cpuid; +0.55 MB binary
//
// autocert's model — obtain during the first handshake, behind the
// client's timeout — is the wrong one for a deploy tool that must never
// fail a request: cutover knows every host name at start and on reload,
// so it obtains them before anyone asks. certmagic has the rest too (ARI
// renewals are exempt from Let's Encrypt's rate limits); its cost is a
// bigger dependency graph (zap among it) and 0.55 MB (34.49 MB against
// 33.93 MB for cmd/cutover linked with this package).
//
// # How cutover uses it
//
// A Manager owns a certmagic Cache and Config. Each managed name has a
// goroutine of the Manager that loads its certificate from storage or,
// failing that, obtains one, retrying with Options.RetryIntervals between
// attempts (a minute, growing to six hours, for as long as the name is
// managed); a name that fails never stops the others. Manage returns
// once the stored certificates are in the cache (up to a few seconds), so
// that a daemon serves them from its first handshake — an upgrade's new
// daemon shares the TLS socket with the old one. Once a name has a
// certificate, certmagic's maintenance renews it (every
// RenewCheckInterval it checks; the ARI window, or the last third of the
// lifetime) and staples OCSP where the CA runs a responder. Renewals
// replace the certificate in the cache while handshakes go on: no request
// fails (TestRenewalUnderLoad).
//
// Three of certmagic's defaults do not suit a daemon, and are changed:
//   - Its synchronous obtain prompts on standard input for an email when
//     none is configured; the first certificate is obtained through an
//     issuer whose pre-check is never interactive (quietIssuer,
//     TestNoPrompt). Renewals use the plain issuer, which tells the CA
//     which certificate it replaces (ARI).
//   - It logs every step at Info through zap; its lines go to the
//     Manager's slog logger, Info as Debug and Error as Warn, and the
//     Manager logs what an operator needs: certificate obtained, stored,
//     renewed, failed and when it tries again.
//   - FileStorage renames without syncing the directory; fileStorage
//     syncs it, as cutover's other state files are.
//
// A stored certificate that does not load (damaged, or beside a key it
// does not match) would stay unusable under certmagic, whose obtain sees
// the files and does nothing: its files are set aside and a new one is
// obtained (TestUnusableStoredCertificate).
//
// certmagic starts a challenge server of its own only when nothing
// listens at the challenge port; the Manager is given the addresses of
// cutover's listeners (Options), so it never does.
//
// GetCertificate never waits for the CA: a managed name without a
// certificate fails its handshake at once with a *NotReadyError saying what
// it waits for, while the plain listener and the names that have one go
// on being served.
package acme
