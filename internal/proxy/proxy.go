package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/textproto"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/h1"
	"github.com/cutover/cutover/internal/traffic"
)

// Defaults applied by New to zero fields of Options.
const (
	// DefaultHoldTimeout is Options.HoldTimeout's default.
	DefaultHoldTimeout = 30 * time.Second
	// DefaultResponseHeaderTimeout is Options.ResponseHeaderTimeout's default.
	DefaultResponseHeaderTimeout = 60 * time.Second
	// DefaultDialTimeout is Options.DialTimeout's default.
	DefaultDialTimeout = 5 * time.Second
	// DefaultIdleConnTimeout is Options.IdleConnTimeout's default.
	DefaultIdleConnTimeout = 90 * time.Second
	// DefaultMaxIdleConnsPerBackend is Options.MaxIdleConnsPerBackend's
	// default.
	DefaultMaxIdleConnsPerBackend = 256
	// DefaultClientBodyTimeout is Options.ClientBodyTimeout's default,
	// nginx's client_body_timeout.
	DefaultClientBodyTimeout = 60 * time.Second
	// DefaultRequestBufferMemory is Options.RequestBufferMemory's default.
	DefaultRequestBufferMemory = 64 << 10
	// DefaultMaxBufferedBody is Options.MaxBufferedBody's default.
	DefaultMaxBufferedBody = 10 << 20
)

// Options configures a Proxy. Every zero value means the documented default.
type Options struct {
	// App names the application in error bodies sent to clients,
	// e.g. "cutover: no healthy instance of <App> after 30s". "" = "app".
	App string
	// HoldTimeout is how long a request waits for a healthy backend of a
	// release it may go to when there is none. 0 = 30s. After it the
	// client gets 503.
	HoldTimeout time.Duration
	// ResponseHeaderTimeout is how long a backend may take to start answering
	// (from the request being written to its response headers). 0 = 60s.
	// After it the client gets 504.
	ResponseHeaderTimeout time.Duration
	// ClientBodyTimeout bounds the time between two reads of a request
	// body from the client, as nginx's client_body_timeout: a client that
	// sends nothing of its body for that long gets 408 Request Timeout,
	// and an upstream request already under way is aborted, so the app
	// sees its body fail rather than end. 0 = 60s.
	ClientBodyTimeout time.Duration
	// StreamRequestBodies sends request bodies to the backend as they
	// arrive, as nginx's proxy_request_buffering off. false = a body of
	// at most MaxBufferedBody bytes is read whole from the client before
	// the request goes to a backend, so a slow client holds no backend
	// connection.
	StreamRequestBodies bool
	// RequestBufferMemory is how many bytes of a buffered body are kept
	// in memory, in bytes; the rest goes to a temporary file in
	// BodyTempDir. 0 = 64 KiB.
	RequestBufferMemory int64
	// MaxBufferedBody is the largest body buffered, in bytes: a body
	// announced larger streams, as does every chunked body (see the
	// package documentation). 0 = 10 MiB.
	MaxBufferedBody int64
	// MaxRequestBody refuses bodies larger than this many bytes with 413
	// (announced larger: at once, without reading them). 0 = no limit.
	MaxRequestBody int64
	// BodyTempDir is where buffered bodies past RequestBufferMemory are
	// kept, in files unlinked as soon as they are made (nothing is left
	// behind, even by a crash); made when missing. "" = os.TempDir().
	BodyTempDir string
	// DialTimeout bounds connecting to a backend. 0 = 5s.
	DialTimeout time.Duration
	// IdleConnTimeout is how long an idle upstream keep-alive connection is
	// kept. 0 = 90s.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerBackend bounds the idle keep-alive connections kept to
	// each backend. 0 = 256.
	MaxIdleConnsPerBackend int
	// Logger receives upstream errors at debug level and nothing per request
	// otherwise. nil = discard.
	Logger *slog.Logger
	// TrustedProxies are the networks of the proxies in front of cutover
	// (a load balancer, a CDN) whose forwarding fields are kept: from a
	// peer in them, X-Forwarded-For is appended to and Forwarded,
	// X-Real-IP and X-Forwarded-* pass; from any other peer they are
	// dropped and set anew (see outgoing). nil = trust no one.
	TrustedProxies []netip.Prefix
	// MaxRequestLineBytes bounds a client request's line on the servers
	// NewServer and NewPreviewServer return (414 past it). 0 =
	// h1.DefaultMaxRequestLineBytes (8 KiB).
	MaxRequestLineBytes int
	// MaxHeaderBytes bounds a client request's head on those servers (431
	// past it). 0 = h1.DefaultMaxHeaderBytes (64 KiB).
	MaxHeaderBytes int

	// Sticky pins a client to the release that served it while more than
	// one release has weight, with the version cookie; the version header
	// of a request then selects a release too. false = no pinning (the
	// cookie and header still reach a release in preview).
	Sticky bool
	// Cookie is the name of the version cookie. "" = "cutover_release".
	// It must be a valid cookie name.
	Cookie string
	// VersionHeader is the request header naming the release a client
	// asks for, and the response header naming the release that answered.
	// "" = "X-Cutover-Release".
	VersionHeader string
	// HideVersion leaves VersionHeader out of responses. false = every
	// response answered on behalf of a release names it.
	HideVersion bool
	// Now is the clock of the sliding windows (Window). nil = time.Now.
	Now func() time.Time
	// AccessLog receives one entry per request (see package accesslog).
	// nil = no access log: the request path then only checks for nil.
	AccessLog AccessLogger
}

// AccessLogger receives the access log's entries. Log is called by the
// request's own goroutine once the exchange is over, so it must not
// block: it hands the entry over and returns.
type AccessLogger interface {
	Log(traffic.Access)
}

// Proxy is a version-aware HTTP reverse proxy (HTTP/1.1 to its backends,
// or h2c: BackendSpec.Protocol). Backends are grouped by
// release; new requests are spread by weight over the releases that have
// healthy backends, or go to the release a client is pinned to.
// The zero value is not usable; use New. All methods are safe for
// concurrent use.
type Proxy struct {
	opts Options
	log  *slog.Logger
	// table is the routing snapshot read by every request without locking;
	// it is replaced (never mutated) under mu.
	table atomic.Pointer[table]
	// rr numbers the requests spread by weight between several releases.
	rr atomic.Uint64
	// versionKey is Options.VersionHeader in canonical form.
	versionKey string
	// now is Options.Now or time.Now.
	now func() time.Time
	// idPrefix is the per-process random part of generated request IDs;
	// idSeq the counter appended to it.
	idPrefix string
	idSeq    atomic.Uint64
	// unserved counts the requests answered by the proxy without a
	// release (Metrics.Unserved).
	unserved atomic.Uint64
	// wsClosed is set by CloseWebsockets: no websocket opens after it.
	wsClosed atomic.Bool

	// holdBody is the precomputed 503 body sent after holding; heldBody
	// the one sent after holding HoldTimeout during a held switch.
	holdBody string
	heldBody string

	mu sync.Mutex
	// backends lists the backends in rotation or waiting for health, in the
	// order they were added, so round-robin order is stable. Guarded by mu.
	backends []*Backend
	// releases holds every release ever seen, for counters from process
	// start. Guarded by mu; a *release itself is safe without mu.
	releases map[string]*release
	// weights holds the releases with weight > 0 (at most MaxWeight).
	// Guarded by mu.
	weights map[string]int
	// preview is the release in preview, "" = none, and previewToken the
	// secret that reaches it. Guarded by mu.
	preview      string
	previewToken string
	// hold is the hold episode under way (Hold), nil when none; holdFailed
	// answers every request while a failed held switch refuses them
	// (FailHold), nil otherwise. Either one routes nothing. Guarded by mu.
	hold       *holdEpisode
	holdFailed *holdFailedError
}

// New returns a Proxy with no backends and no weights: requests are held
// until a release has weight and one of its backends is healthy.
func New(opts Options) *Proxy {
	if opts.App == "" {
		opts.App = "app"
	}
	if opts.HoldTimeout <= 0 {
		opts.HoldTimeout = DefaultHoldTimeout
	}
	if opts.ResponseHeaderTimeout <= 0 {
		opts.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if opts.ClientBodyTimeout <= 0 {
		opts.ClientBodyTimeout = DefaultClientBodyTimeout
	}
	if opts.RequestBufferMemory <= 0 {
		opts.RequestBufferMemory = DefaultRequestBufferMemory
	}
	if opts.MaxBufferedBody <= 0 {
		opts.MaxBufferedBody = DefaultMaxBufferedBody
	}
	if opts.BodyTempDir == "" {
		opts.BodyTempDir = os.TempDir()
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.IdleConnTimeout <= 0 {
		opts.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if opts.MaxIdleConnsPerBackend <= 0 {
		opts.MaxIdleConnsPerBackend = DefaultMaxIdleConnsPerBackend
	}
	if opts.Cookie == "" {
		opts.Cookie = DefaultCookie
	}
	if opts.VersionHeader == "" {
		opts.VersionHeader = DefaultVersionHeader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Proxy{
		opts:       opts,
		log:        log.With("component", "proxy"),
		releases:   make(map[string]*release),
		idPrefix:   newIDPrefix(),
		versionKey: textproto.CanonicalMIMEHeaderKey(opts.VersionHeader),
		now:        opts.Now,
		holdBody:   "cutover: no healthy instance of " + opts.App + " after " + opts.HoldTimeout.String() + "\n",
		heldBody:   "cutover: " + opts.App + " is switching releases and did not answer within " + opts.HoldTimeout.String() + "; try again\n",
	}
	p.table.Store(&table{changed: make(chan struct{})})
	return p
}

// newIDPrefix returns the random per-process part of generated request IDs.
func newIDPrefix() string {
	var b [6]byte
	// crypto/rand.Read never returns an error (it panics instead on the
	// platforms where randomness is unavailable).
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}

// NewServer returns the server of the proxy listener: an *h1.Server
// serving p, with timeouts against slow clients: readHeaderTimeout bounds
// reading a request's headers and idleTimeout how long a keep-alive client
// connection may sit idle; a request's head is bounded by
// Options.MaxRequestLineBytes and MaxHeaderBytes. There is no bound on reading a body or writing
// an answer, so that streams, long uploads and websockets can last. It
// speaks HTTP/1.x only.
func (p *Proxy) NewServer(readHeaderTimeout, idleTimeout time.Duration) *h1.Server {
	return p.newServer(p, readHeaderTimeout, idleTimeout)
}

// NewPreviewServer is NewServer for the preview listener: every request
// goes to the release in preview (PreviewHandler).
func (p *Proxy) NewPreviewServer(readHeaderTimeout, idleTimeout time.Duration) *h1.Server {
	return p.newServer(p.PreviewHandler(), readHeaderTimeout, idleTimeout)
}

func (p *Proxy) newServer(h http.Handler, readHeaderTimeout, idleTimeout time.Duration) *h1.Server {
	return &h1.Server{
		Handler:             h,
		ReadHeaderTimeout:   readHeaderTimeout,
		IdleTimeout:         idleTimeout,
		MaxRequestLineBytes: p.opts.MaxRequestLineBytes,
		MaxHeaderBytes:      p.opts.MaxHeaderBytes,
		ErrorLog:            slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}
