package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"

	"github.com/cutover/cutover/internal/config"
)

// ALPNProto is the ALPN protocol of TLS-ALPN-01 challenges (RFC 8737):
// the TLS listener's tls.Config.NextProtos must list it, or the CA's
// validation handshake fails before GetCertificate answers it.
const ALPNProto = acmez.ACMETLS1Protocol

// DefaultRetryIntervals are the waits between attempts to obtain a name's
// first certificate: growing from a minute to six hours, then every six
// hours for as long as the name is managed. An attempt after the first
// is checked first against Let's Encrypt's staging directory when the CA
// is Let's Encrypt's production, so retries do not spend production's
// rate limits on a name that cannot validate.
var DefaultRetryIntervals = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	3 * time.Hour, 6 * time.Hour,
}

// Options are what a Manager needs besides the config file.
type Options struct {
	// HTTPAddr is the address of cutover's plain listener (proxy.listen),
	// which answers HTTP-01 challenges through HTTPChallenge. Its port is
	// the one the CA is taken to reach (through a port forward when it is
	// not 80). Empty: HTTP-01 is not used.
	HTTPAddr string

	// TLSAddr is the address of cutover's TLS listener, which answers
	// TLS-ALPN-01 challenges through GetCertificate. Empty: TLS-ALPN-01 is
	// not used.
	TLSAddr string

	// Logger receives the Manager's lines, and certmagic's (its Info at
	// Debug level). Nil: slog.Default().
	Logger *slog.Logger

	// RetryIntervals are the waits between attempts to obtain a name's
	// first certificate, the last repeated. Nil: DefaultRetryIntervals.
	RetryIntervals []time.Duration

	// RenewCheckInterval is how often certificates are checked for
	// renewal. 0: certmagic's default (10 minutes).
	RenewCheckInterval time.Duration
}

// Manager obtains, stores, renews and serves the certificates of a set of
// host names. Its methods are safe for concurrent use.
type Manager struct {
	log       *slog.Logger
	ca        string
	cache     *certmagic.Cache
	cfg       *certmagic.Config // handshakes and renewals
	obtainCfg *certmagic.Config // first certificates: never prompts
	issuer    *certmagic.ACMEIssuer
	retry     []time.Duration

	ctx       context.Context // ends at Close
	cancel    context.CancelFunc
	closeOnce sync.Once

	mu    sync.RWMutex
	names map[string]*entry // by host name
	wg    sync.WaitGroup    // one per entry's goroutine
}

// entry is one managed name: its status, and the goroutine that obtains
// its first certificate.
type entry struct {
	status Status
	cancel context.CancelFunc // stops the goroutine; nil for Skipped
	// looked is closed once the goroutine's first look at storage is
	// done (a stored certificate is then in the cache); Manage waits for
	// it. nil for Skipped.
	looked     chan struct{}
	lookedOnce sync.Once
}

// storedWait bounds how long Manage waits for the names' certificates
// to be read from storage.
const storedWait = 5 * time.Second

// doneLooking closes e.looked, once.
func (e *entry) doneLooking() { e.lookedOnce.Do(func() { close(e.looked) }) }

// New makes a Manager for the [tls] table of c, storing under
// <data_dir>/acme. It reads tls.ca_root. It manages no name until
// Manage. Close stops it.
func New(c *config.Config, o Options) (*Manager, error) {
	if !c.TLS.ACME {
		return nil, errors.New("acme: tls.acme is false")
	}
	roots, err := c.ACMERoots()
	if err != nil {
		return nil, err
	}
	httpPort, err := port(o.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("acme: HTTP-01 address: %w", err)
	}
	tlsPort, err := port(o.TLSAddr)
	if err != nil {
		return nil, fmt.Errorf("acme: TLS-ALPN-01 address: %w", err)
	}
	useHTTP := httpPort != 0 && slices.Contains(c.TLS.Challenges, config.ChallengeHTTP01)
	useTLS := tlsPort != 0 && slices.Contains(c.TLS.Challenges, config.ChallengeTLSALPN01)
	if !useHTTP && !useTLS {
		return nil, fmt.Errorf("acme: no challenge can be answered: tls.challenges is %q, and %s; list a challenge whose listener runs, or set tls.acme = false", c.TLS.Challenges, listeners(o))
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "acme")
	zl := zapLogger(logger)

	m := &Manager{
		log:   logger,
		ca:    c.TLS.Directory(),
		names: make(map[string]*entry),
		retry: o.RetryIntervals,
	}
	if len(m.retry) == 0 {
		m.retry = DefaultRetryIntervals
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: o.RenewCheckInterval,
		Logger:             zl,
	})
	store := fileStorage{&certmagic.FileStorage{Path: filepath.Join(c.DataDir, "acme")}}
	template := certmagic.Config{
		Storage:   store,
		KeySource: certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
		OnEvent:   m.onEvent,
		// Only the events onEvent reads: certmagic otherwise builds and
		// emits one for every handshake (tls_get_certificate).
		ShouldEmitFunc: func(event string) bool { return event == "cert_obtained" || event == "cert_failed" },
		Logger:         zl,
	}
	m.cfg = certmagic.New(m.cache, template)
	m.issuer = certmagic.NewACMEIssuer(m.cfg, certmagic.ACMEIssuer{
		CA:     m.ca,
		Email:  c.TLS.Email,
		Agreed: true, // configuring a CA is agreeing to its terms; a daemon cannot ask
		// certmagic binds a challenge server of its own only when nothing
		// listens at the port; cutover's listeners do, so it never does.
		DisableHTTPChallenge:    !useHTTP,
		DisableTLSALPNChallenge: !useTLS,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          tlsPort,
		TrustedRoots:            roots,
		Logger:                  zl,
	})
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	m.obtainCfg = certmagic.New(m.cache, template)
	m.obtainCfg.Issuers = []certmagic.Issuer{quietIssuer{m.issuer}}
	return m, nil
}

// listeners says which listeners Options has, for an error.
func listeners(o Options) string {
	switch {
	case o.HTTPAddr == "" && o.TLSAddr == "":
		return "there is neither a plain nor a TLS listener"
	case o.HTTPAddr == "":
		return "there is no plain listener for http-01"
	}
	return "there is no TLS listener for tls-alpn-01"
}

// port returns the port of host:port, or 0 for "".
func port(addr string) (int, error) {
	if addr == "" {
		return 0, nil
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("%q: port must be 1 to 65535", addr)
	}
	return n, nil
}

// quietIssuer is the ACME issuer with its pre-check never interactive.
// certmagic's synchronous obtain is meant for a person at a terminal: with
// no email configured it asks for one on standard input, which would hang
// a daemon started from a shell. Renewals (certmagic's maintenance) use
// the issuer itself, non-interactively, so that they tell the CA which
// certificate they replace (ARI), which Let's Encrypt exempts from its
// rate limits.
type quietIssuer struct {
	*certmagic.ACMEIssuer
}

// PreCheck checks the names as the issuer does, never prompting.
func (q quietIssuer) PreCheck(ctx context.Context, names []string, _ bool) error {
	return q.ACMEIssuer.PreCheck(ctx, names, false)
}

// Close stops obtaining and renewing certificates and waits for the
// Manager's goroutines. What is stored stays for the next Manager. Calls
// after the first do nothing.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.cancel() // under mu: Manage starts no goroutine after it
		m.mu.Unlock()
		m.wg.Wait()
		m.cache.Stop()
	})
}

// Manage makes names the set of host names the Manager manages: names
// not managed yet get their certificate loaded from storage or obtained
// from the CA in the background, each on its own, so a name that fails
// never holds up another; names managed before and not in names are
// dropped. Call it at start and again on each reload with the host names
// of all apps, once the listeners of Options listen (at a challenge port
// where nothing listens, certmagic would bind a server of its own). It
// returns once the certificates stored for the new names are served (up
// to storedWait): a daemon that starts, or takes over from another in an
// upgrade, fails no handshake for a name it has a certificate for. Names
// are lower-cased; a trailing dot is dropped. A
// wildcard ("*.example.com") is Skipped: HTTP-01 and TLS-ALPN-01 cannot
// prove control of every name under a domain. So is an IP address: a
// client sends no server name (SNI) for it, so its handshake could not
// be given its certificate.
func (m *Manager) Manage(names []string) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		if n = normalize(n); n != "" {
			want[n] = true
		}
	}
	m.mu.Lock()
	if m.ctx.Err() != nil {
		m.mu.Unlock()
		return // closed
	}
	var looking []chan struct{}
	for name, e := range m.names {
		if want[name] {
			continue
		}
		if e.cancel != nil {
			e.cancel()
		}
		delete(m.names, name)
		m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: name}})
		m.log.Info("host no longer managed", "host", name)
	}
	for name := range want {
		if _, ok := m.names[name]; ok {
			continue
		}
		if strings.HasPrefix(name, "*.") {
			m.names[name] = &entry{status: Status{Name: name, State: Skipped,
				Waiting: "a wildcard name needs the DNS-01 challenge, which cutover does not answer; give its certificate as files"}}
			m.log.Warn("wildcard host skipped: HTTP-01 and TLS-ALPN-01 cannot issue wildcard certificates; give its certificate as files", "host", name)
			continue
		}
		if net.ParseIP(name) != nil {
			m.names[name] = &entry{status: Status{Name: name, State: Skipped,
				Waiting: "an IP address: clients send no server name (SNI) for it, so no certificate can be chosen by name; give the default app a certificate file valid for it"}}
			m.log.Warn("IP address host skipped: a handshake for an IP address names no server (SNI); give the default app a certificate file valid for it", "host", name)
			continue
		}
		ctx, cancel := context.WithCancel(m.ctx)
		e := &entry{
			status: Status{Name: name, State: Waiting, Waiting: "a certificate from " + m.ca},
			cancel: cancel,
			looked: make(chan struct{}),
		}
		m.names[name] = e
		looking = append(looking, e.looked)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer e.doneLooking()
			m.obtainLoop(ctx, e, name)
		}()
	}
	m.mu.Unlock()
	t := time.NewTimer(storedWait)
	defer t.Stop()
	for _, ch := range looking {
		select {
		case <-ch:
		case <-t.C:
			m.log.Warn("certificates still being read from storage; handshakes for their names fail until they are", "waited", storedWait.String())
			return
		}
	}
}

// normalize lower-cases a host name and drops a trailing dot.
func normalize(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// obtainLoop gets name's certificate into the cache, from storage or the
// CA, retrying after failures with m.retry's waits until it succeeds or
// ctx ends. Renewal is certmagic's maintenance from then on.
func (m *Manager) obtainLoop(ctx context.Context, e *entry, name string) {
	for attempts := 0; ; {
		err := m.load(ctx, e, name, attempts)
		if err == nil || ctx.Err() != nil {
			return
		}
		wait := m.retry[min(attempts, len(m.retry)-1)]
		attempts++
		next := time.Now().Add(wait)
		m.update(e, func(s *Status) {
			s.LastError, s.LastErrorAt, s.NextAttempt, s.Attempts = err.Error(), time.Now(), next, attempts
			s.Waiting = "a certificate from " + m.ca
		})
		m.log.Warn("no certificate for host; serving it over TLS waits for it",
			"host", name, "ca", m.ca, "attempt", attempts, "next_attempt_in", wait.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		m.update(e, func(s *Status) { s.NextAttempt = time.Time{} })
	}
}

// load caches name's certificate: the one stored if it has not expired,
// else a new one from the CA. attempts is how many attempts failed before.
func (m *Manager) load(ctx context.Context, e *entry, name string, attempts int) error {
	cert, err := m.cfg.CacheManagedCertificate(ctx, name)
	switch {
	case err == nil && !cert.Expired():
		m.issued(e, cert, "stored")
		e.doneLooking()
		return nil
	case err == nil:
		// Stored but expired (the daemon was off for long): renew it
		// before serving it.
		m.cache.Remove([]string{cert.Hash()})
		e.doneLooking()
		m.log.Info("stored certificate expired; renewing it", "host", name, "not_after", cert.Leaf.NotAfter)
		if err := m.obtainCfg.RenewCertSync(withAttempts(ctx, attempts), name, false); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		e.doneLooking()
		m.log.Info("obtaining certificate", "host", name, "ca", m.ca)
		if err := m.obtainCfg.ObtainCertSync(withAttempts(ctx, attempts), name); err != nil {
			return err
		}
	default:
		e.doneLooking()
		// A certificate that does not load stays unusable: certmagic
		// would neither renew nor replace it (its obtain sees the files
		// and does nothing). Its files are set aside, for a look, and a
		// new certificate is obtained.
		aside, aerr := m.setAside(name)
		if aerr != nil {
			return fmt.Errorf("stored certificate of %s unusable (%v), and %w", name, err, aerr)
		}
		m.log.Warn("stored certificate unusable; set aside, obtaining a new one", "host", name, "err", err, "moved_to", aside)
		if err := m.obtainCfg.ObtainCertSync(withAttempts(ctx, attempts), name); err != nil {
			return err
		}
	}
	cert, err = m.cfg.CacheManagedCertificate(ctx, name)
	if err != nil {
		return fmt.Errorf("load the certificate just obtained for %s: %w", name, err)
	}
	m.issued(e, cert, "obtained")
	return nil
}

// setAside renames the stored site directory of name (certificate, key,
// metadata) to <dir>.unusable-<time>, and returns the new path. Files it
// cannot read make it fail: a disk error is not a bad certificate.
func (m *Manager) setAside(name string) (string, error) {
	store := m.cfg.Storage.(fileStorage)
	dir := store.Filename(certmagic.StorageKeys.CertsSitePrefix(m.issuer.IssuerKey(), name))
	for _, key := range []string{
		certmagic.StorageKeys.SiteCert(m.issuer.IssuerKey(), name),
		certmagic.StorageKeys.SitePrivateKey(m.issuer.IssuerKey(), name),
		certmagic.StorageKeys.SiteMeta(m.issuer.IssuerKey(), name),
	} {
		if _, err := os.ReadFile(store.Filename(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("cannot read it: %w", err)
		}
	}
	aside := dir + ".unusable-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(dir, aside); err != nil {
		return "", fmt.Errorf("cannot set it aside: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return "", err
	}
	return aside, nil
}

// withAttempts tells certmagic's ACME issuer how many attempts failed
// before this one: after a failure it validates against the CA's staging
// directory first (Let's Encrypt's), sparing production's rate limits.
func withAttempts(ctx context.Context, attempts int) context.Context {
	n := attempts
	return context.WithValue(ctx, certmagic.AttemptsCtxKey, &n)
}

// issued records that e's name has a certificate in the cache.
func (m *Manager) issued(e *entry, cert certmagic.Certificate, how string) {
	m.update(e, func(s *Status) {
		s.State, s.Waiting, s.NextAttempt = Issued, "", time.Time{}
		s.LastError, s.LastErrorAt = "", time.Time{}
	})
	m.log.Info("certificate "+how, "host", e.status.Name, "not_after", cert.Leaf.NotAfter.UTC(), "serial", cert.Leaf.SerialNumber.Text(16))
}

// update changes e's status, while e is managed (a name dropped and
// managed again is a new entry: the old goroutine's news are stale).
func (m *Manager) update(e *entry, f func(*Status)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names[e.status.Name] == e {
		f(&e.status)
	}
}

// updateName changes the status of name, if it is managed.
func (m *Manager) updateName(name string, f func(*Status)) {
	m.mu.RLock()
	e := m.names[name]
	m.mu.RUnlock()
	if e != nil {
		m.update(e, f)
	}
}

// onEvent follows certmagic's renewals, which its maintenance runs, into
// the status of their names.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	if name == "" || !renewal {
		return nil
	}
	switch event {
	case "cert_obtained":
		m.updateName(name, func(s *Status) { s.LastError, s.LastErrorAt = "", time.Time{} })
		m.log.Info("certificate renewed", "host", name)
	case "cert_failed":
		err, _ := data["error"].(error)
		msg := fmt.Sprint(err)
		m.updateName(name, func(s *Status) { s.LastError, s.LastErrorAt = msg, time.Now() })
		m.log.Warn("certificate renewal failed; the current certificate is served until it expires, and renewal is tried again with backoff", "host", name, "err", msg)
	}
	return nil
}

// GetCertificate is a tls.Config.GetCertificate for the managed names. It
// answers TLS-ALPN-01 challenges (a hello offering only "acme-tls/1"),
// the certificate of a managed name that has one, a *NotReadyError for a
// managed name that has none yet (at once: the handshake never waits for
// the CA), and nil, nil for any other name, so that a chain of
// certificate sources can try the next.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
		return m.cfg.GetCertificate(hello)
	}
	name := normalize(hello.ServerName)
	m.mu.RLock()
	e, ok := m.names[name]
	var st Status
	if ok {
		st = e.status
	}
	m.mu.RUnlock()
	if !ok || st.State == Skipped {
		return nil, nil
	}
	if st.State != Issued {
		return nil, &NotReadyError{Status: st}
	}
	return m.cfg.GetCertificate(hello)
}

// HTTPChallenge answers an ACME HTTP-01 challenge request
// (/.well-known/acme-challenge/TOKEN for a challenge in progress) and
// reports true, or reports false and writes nothing, for the caller to
// serve the request. The plain listener calls it before anything else,
// redirects to HTTPS included.
func (m *Manager) HTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !certmagic.LooksLikeHTTPChallenge(r) {
		return false
	}
	return m.issuer.HandleHTTPChallenge(w, r)
}

// HasCertificate reports whether name (any case, trailing dot or not) is
// managed and has a certificate to serve.
func (m *Manager) HasCertificate(name string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.names[normalize(name)]
	return ok && e.status.State == Issued
}

// Status returns the status of every managed name, sorted by name.
func (m *Manager) Status() []Status {
	m.mu.RLock()
	out := make([]Status, 0, len(m.names))
	for _, e := range m.names {
		out = append(out, e.status)
	}
	m.mu.RUnlock()
	for i := range out {
		if out[i].State != Issued {
			continue
		}
		for _, c := range m.cache.AllMatchingCertificates(out[i].Name) {
			if c.Leaf != nil && c.Leaf.NotAfter.After(out[i].NotAfter) {
				out[i].NotAfter = c.Leaf.NotAfter
			}
		}
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}
