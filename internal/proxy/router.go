package proxy

// The host router: one listener, many apps. Each app keeps its own
// *Proxy (its own table, releases, weights, pins, hold, drain, preview
// and stats); the router only chooses which one serves a request, by its
// Host, from one immutable snapshot read with one atomic load.

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/h1"
)

// Route is one app's place in a Router.
type Route struct {
	// App names the app, for logs and errors of SetRoutes only; it is
	// never shown to clients. It must be unique among the routes.
	App string
	// Hosts are the host names the app serves: exact names
	// ("shop.example.com") and wildcards ("*.example.com", which matches
	// every name ending in ".example.com", not "example.com" itself).
	// Case and a trailing dot do not matter; a port is refused (requests
	// are matched without theirs). A name may appear in one route only.
	Hosts []string
	// Default makes the app serve every host no route names. At most one
	// route may be the default; without one, such hosts get 404.
	Default bool
	// Proxy serves the app's requests. It must not be nil, and its version
	// cookie (Options.Cookie) must differ from every other route's.
	Proxy *Proxy
	// RedirectHTTPS answers the app's plain-HTTP requests for a host with
	// a certificate (RouterOptions.Certs) with 308 Permanent Redirect to
	// the same URL in https, but for the paths of ACME's HTTP-01 challenge.
	// false = plain requests are served.
	RedirectHTTPS bool
	// HSTS is the Strict-Transport-Security value sent on the app's
	// responses to requests that came over TLS ("max-age=31536000"). "" =
	// none.
	HSTS string
}

// ACMEChallengePath is the path prefix of ACME's HTTP-01 challenge (RFC
// 8555 section 8.3): never redirected to https, and offered to
// RouterOptions.Challenge when it is set.
const ACMEChallengePath = "/.well-known/acme-challenge/"

// ChallengeSolver answers ACME HTTP-01 challenge requests: HTTPChallenge
// answers r and reports true when it is one of its challenges, else
// writes nothing and reports false (acme.Manager).
type ChallengeSolver interface {
	HTTPChallenge(w http.ResponseWriter, r *http.Request) bool
}

// CertChecker tells whether a TLS certificate serves a host name (lower
// case, without port or trailing dot): the TLS listener's certificates
// (tlsfront.Chain).
type CertChecker interface {
	HasCertificate(name string) bool
}

// RouterOptions configures a Router. Every zero value means the
// documented default.
type RouterOptions struct {
	// MaxRequestLineBytes bounds a client request's line on the server
	// NewServer returns (414 past it). 0 = h1.DefaultMaxRequestLineBytes
	// (8 KiB).
	MaxRequestLineBytes int
	// MaxHeaderBytes bounds a client request's head on that server (431
	// past it). 0 = h1.DefaultMaxHeaderBytes (64 KiB).
	MaxHeaderBytes int
	// Logger receives the server's errors at debug level. nil = discard.
	Logger *slog.Logger

	// Certs tells which hosts have a certificate on the TLS listener: a
	// plain request for one of them, to a route with RedirectHTTPS, is
	// redirected to https. nil = no redirect.
	Certs CertChecker
	// HTTPSPort is the TLS listener's port, written in redirects unless
	// it is 443. 0 = 443.
	HTTPSPort int
	// Challenge, when set, is offered every plain request under
	// ACMEChallengePath, whatever its host (ACME's HTTP-01 challenge);
	// those it does not answer (a token it does not know: an app's own
	// ACME client, certbot's webroot) are routed as any other, never
	// redirected. nil = they are all routed so.
	Challenge ChallengeSolver
}

// Router sends each request to the Proxy of the app its Host names. The
// zero value is not usable; use NewRouter. All methods are safe for
// concurrent use.
type Router struct {
	opts RouterOptions
	log  *slog.Logger
	// routes is the routing snapshot read by every request without
	// locking; SetRoutes replaces it, never mutates it.
	routes atomic.Pointer[routes]
}

// routes is an immutable snapshot of a Router's routes.
type routes struct {
	// list is the routes as given to SetRoutes, hosts normalised.
	list []Route
	// only is the Proxy of the single route when it is the default: every
	// request goes to it without looking at its Host.
	only *Proxy
	// exact maps an exact host name to its app's Proxy; suffix maps a
	// wildcard's suffix (".example.com" for "*.example.com") to its app's.
	exact  map[string]*Proxy
	suffix map[string]*Proxy
	// def serves the hosts no route names; nil = 404.
	def *Proxy
	// front holds, for the routes with RedirectHTTPS or HSTS, what the
	// front door does for them; nil when no route has either and no
	// RouterOptions.Challenge is set, so that a router without TLS keeps
	// its fast path.
	front map[*Proxy]*frontRoute
}

// frontRoute is what the router does for one route on its way in (see
// frontDoor).
type frontRoute struct {
	redirect bool
	hsts     []string // the header's one value; nil = none
}

// NewRouter returns a Router with no routes: every request gets 404 until
// SetRoutes.
func NewRouter(opts RouterOptions) *Router {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Router{opts: opts, log: log.With("component", "router")}
	r.routes.Store(&routes{})
	return r
}

// SetRoutes replaces the routes in one atomic step. A request already
// under way keeps the Proxy it was given: the requests of an app that
// leaves the routes finish there (a held one waits up to that Proxy's
// HoldTimeout; Proxy.FailHold answers it at once); requests that come
// after go by the new routes, so to the default app or 404 for the hosts
// of a removed app. The apps that stay are not interrupted. SetRoutes
// refuses, changing nothing, a route without an app name or a Proxy, an
// app or a host named twice, an invalid host name, a route with neither
// hosts nor Default, two defaults, and two proxies with the same version
// cookie (Options.Cookie).
func (r *Router) SetRoutes(rs []Route) error {
	snap, err := buildRoutes(rs, r.opts.Challenge != nil)
	if err != nil {
		return err
	}
	r.routes.Store(snap)
	return nil
}

// Routes returns a copy of the routes in effect, host names normalised
// (lower case, no trailing dot).
func (r *Router) Routes() []Route {
	list := r.routes.Load().list
	out := make([]Route, len(list))
	for i, rt := range list {
		rt.Hosts = append([]string(nil), rt.Hosts...)
		out[i] = rt
	}
	return out
}

// buildRoutes checks rs and returns its snapshot; challenge says whether
// RouterOptions.Challenge is set.
func buildRoutes(rs []Route, challenge bool) (*routes, error) {
	snap := &routes{
		list:   make([]Route, 0, len(rs)),
		exact:  make(map[string]*Proxy),
		suffix: make(map[string]*Proxy),
	}
	apps := make(map[string]bool, len(rs))
	hostApp := make(map[string]string)
	cookieApp := make(map[string]string, len(rs))
	defApp := ""
	for i, rt := range rs {
		if rt.App == "" {
			return nil, fmt.Errorf("route %d: no app name", i+1)
		}
		if apps[rt.App] {
			return nil, fmt.Errorf("route %d: app %q is named twice", i+1, rt.App)
		}
		apps[rt.App] = true
		if rt.Proxy == nil {
			return nil, fmt.Errorf("app %q: no proxy", rt.App)
		}
		if other, ok := cookieApp[rt.Proxy.opts.Cookie]; ok {
			return nil, fmt.Errorf("apps %q and %q: same version cookie %q; give each app its own", other, rt.App, rt.Proxy.opts.Cookie)
		}
		cookieApp[rt.Proxy.opts.Cookie] = rt.App
		if rt.Default {
			if defApp != "" {
				return nil, fmt.Errorf("apps %q and %q: both are the default; only one app may take unknown hosts", defApp, rt.App)
			}
			defApp = rt.App
			snap.def = rt.Proxy
		}
		if len(rt.Hosts) == 0 && !rt.Default {
			return nil, fmt.Errorf("app %q: no host and not the default: it would get no request", rt.App)
		}
		hosts := make([]string, 0, len(rt.Hosts))
		for _, h := range rt.Hosts {
			n, err := normalHostName(h)
			if err != nil {
				return nil, fmt.Errorf("app %q: %w", rt.App, err)
			}
			if other, ok := hostApp[n]; ok {
				return nil, fmt.Errorf("apps %q and %q: host %q is named twice", other, rt.App, n)
			}
			hostApp[n] = rt.App
			hosts = append(hosts, n)
			if suffix, ok := strings.CutPrefix(n, "*"); ok {
				snap.suffix[suffix] = rt.Proxy
			} else {
				snap.exact[n] = rt.Proxy
			}
		}
		rt.Hosts = hosts
		snap.list = append(snap.list, rt)
		if rt.RedirectHTTPS || rt.HSTS != "" {
			if snap.front == nil {
				snap.front = make(map[*Proxy]*frontRoute)
			}
			fr := &frontRoute{redirect: rt.RedirectHTTPS}
			if rt.HSTS != "" {
				fr.hsts = []string{rt.HSTS}
			}
			snap.front[rt.Proxy] = fr
		}
	}
	if challenge && snap.front == nil {
		snap.front = make(map[*Proxy]*frontRoute)
	}
	if len(snap.list) == 1 && snap.list[0].Default {
		snap.only = snap.def
	}
	return snap, nil
}

// normalHostName returns the configured host name h in lower case
// without a trailing dot, or an error saying why it cannot be one: a
// name of letters, digits, '-', '_' and '.' (IDNs in their "xn--" form),
// or "*." followed by one.
func normalHostName(h string) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(h), ".")
	if a, err := netip.ParseAddr(strings.Trim(n, "[]")); err == nil && a.Is6() {
		return "", fmt.Errorf("host %q: an IPv6 address cannot name an app; let the default app take it", h)
	}
	name := strings.TrimPrefix(n, "*.")
	if name == "" || len(n) > 255 {
		return "", fmt.Errorf("host %q: not a host name", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("host %q: not a host name (empty or too long label)", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case c == ':':
				return "", fmt.Errorf("host %q: a port has no place here (requests are matched by name, whatever their port)", h)
			case c == '*':
				return "", fmt.Errorf("host %q: a wildcard is only allowed as the first label, as in *.example.com", h)
			default:
				return "", fmt.Errorf("host %q: %q is not allowed in a host name (write IDNs in their xn-- form)", h, c)
			}
		}
	}
	return n, nil
}

// ServeHTTP sends req to the Proxy of the app its host names (see
// match), or answers 404. With the front door set up (Route.RedirectHTTPS
// or HSTS, RouterOptions.Challenge) it first does what frontDoor says.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s := r.routes.Load()
	if s.front != nil && r.frontDoor(w, req, s) {
		return
	}
	if p := s.proxyFor(req.Host); p != nil {
		p.ServeHTTP(w, req)
		return
	}
	refuse(w, http.StatusNotFound, unknownHostBody)
}

// frontDoor answers req itself when it is a plain request for one of
// ACME's HTTP-01 challenges (RouterOptions.Challenge answers it) or for a host with a
// certificate whose app redirects to https (308), and reports whether it
// did. A request over TLS to an app with HSTS gets its header.
func (r *Router) frontDoor(w http.ResponseWriter, req *http.Request, s *routes) bool {
	if req.TLS == nil && r.opts.Challenge != nil && strings.HasPrefix(req.URL.Path, ACMEChallengePath) {
		if r.opts.Challenge.HTTPChallenge(w, req) {
			return true
		}
	}
	p := s.proxyFor(req.Host)
	fr := s.front[p]
	if fr == nil {
		return false
	}
	if req.TLS != nil {
		if fr.hsts != nil {
			w.Header()["Strict-Transport-Security"] = fr.hsts
		}
		return false
	}
	if !fr.redirect || r.opts.Certs == nil || !strings.HasPrefix(req.URL.Path, "/") || strings.HasPrefix(req.URL.Path, ACMEChallengePath) {
		return false
	}
	host := strings.TrimSuffix(strings.ToLower(stripPort(req.Host)), ".")
	if !r.opts.Certs.HasCertificate(host) {
		return false
	}
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	loc := "https://" + host
	if port := r.opts.HTTPSPort; port != 0 && port != 443 {
		loc += ":" + strconv.Itoa(port)
	}
	loc += req.URL.RequestURI()
	h := w.Header()
	h["Location"] = []string{loc}
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	w.WriteHeader(http.StatusPermanentRedirect)
	_, _ = io.WriteString(w, "cutover: this site is served over https: "+loc+"\n") // the client may be gone
	return true
}

// proxyFor returns the Proxy serving a request for host, nil when none
// does: the only route's when it is the default, without reading host,
// else match's.
func (s *routes) proxyFor(host string) *Proxy {
	if s.only != nil {
		return s.only
	}
	return s.match(host)
}

// unknownHostBody is the 404 body for a host no app serves. It names
// nothing of what is behind the proxy.
const unknownHostBody = "cutover: no app is served at this host name\n"

// match returns the Proxy serving the request host host (a Host value:
// a name or an address, with or without a port): the route naming it
// exactly, else the most specific wildcard matching it (the longest
// suffix), else the default; nil when none. The port, case and a
// trailing dot do not matter. It allocates nothing.
func (s *routes) match(host string) *Proxy {
	host = stripPort(host)
	var buf [64]byte
	name := host
	if needsLower(host) {
		if len(host) > len(buf) {
			name = strings.ToLower(host)
		} else {
			b := buf[:len(host)]
			for i := 0; i < len(host); i++ {
				c := host[i]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				b[i] = c
			}
			return s.matchBytes(b)
		}
	}
	name = strings.TrimSuffix(name, ".")
	if p, ok := s.exact[name]; ok {
		return p
	}
	if len(s.suffix) > 0 {
		for i := 0; i < len(name); i++ {
			if name[i] == '.' {
				if p, ok := s.suffix[name[i:]]; ok {
					return p
				}
			}
		}
	}
	return s.def
}

// matchBytes is match for a lower-cased name in b: the map lookups of
// string(b) do not copy it.
func (s *routes) matchBytes(b []byte) *Proxy {
	if n := len(b); n > 0 && b[n-1] == '.' {
		b = b[:n-1]
	}
	if p, ok := s.exact[string(b)]; ok {
		return p
	}
	if len(s.suffix) > 0 {
		for i := 0; i < len(b); i++ {
			if b[i] == '.' {
				if p, ok := s.suffix[string(b[i:])]; ok {
					return p
				}
			}
		}
	}
	return s.def
}

// needsLower reports whether s has an upper-case ASCII letter.
func needsLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// stripPort returns the host of a Host value without its port, and an
// IPv6 literal without its brackets.
func stripPort(host string) string {
	if len(host) > 0 && host[0] == '[' {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// NewServer returns the server of the proxy listener of every app: an
// *h1.Server serving r, with the timeouts and bounds of Proxy.NewServer
// (readHeaderTimeout for a request's headers, idleTimeout for an idle
// keep-alive connection, RouterOptions.MaxRequestLineBytes and
// MaxHeaderBytes for a request's head). The router reads only
// Request.Host, which h1's fast path fills, so requests keep that path.
func (r *Router) NewServer(readHeaderTimeout, idleTimeout time.Duration) *h1.Server {
	return &h1.Server{
		Handler:             r,
		ReadHeaderTimeout:   readHeaderTimeout,
		IdleTimeout:         idleTimeout,
		MaxRequestLineBytes: r.opts.MaxRequestLineBytes,
		MaxHeaderBytes:      r.opts.MaxHeaderBytes,
		ErrorLog:            slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
}
