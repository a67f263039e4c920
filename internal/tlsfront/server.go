package tlsfront

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/h1"
	"github.com/cutover/cutover/internal/h2"
	"github.com/cutover/cutover/internal/rawio"
	"github.com/cutover/cutover/internal/xconnect"
)

// net/http's init has read GODEBUG with http2xconnect=1 by now (package
// xconnect's init ran before it): the HTTP/2 server offers websockets
// over HTTP/2 (RFC 8441). What the daemon starts from here on must get
// the user's GODEBUG.
func init() { xconnect.Restore() }

// The HTTP/2 servers Options.HTTP2Server chooses between.
const (
	// HTTP2Cutover is cutover's own HTTP/2 server, package h2.
	HTTP2Cutover = "cutover"
	// HTTP2Go is net/http's HTTP/2 server.
	HTTP2Go = "go"
)

// DefaultHTTP2Server is Options.HTTP2Server's default.
var DefaultHTTP2Server = HTTP2Cutover

// DefaultHandshakeTimeout is Options.HandshakeTimeout's default.
const DefaultHandshakeTimeout = 10 * time.Second

// Options configure a Server. Every zero value means the documented
// default.
type Options struct {
	// H1 serves the connections that chose HTTP/1.1 (or no protocol). It
	// must not be serving a listener of its own: its Shutdown is this
	// Server's. Required.
	H1 *h1.Server
	// Handler answers the HTTP/2 requests: the same as H1's. Required.
	Handler http.Handler
	// Certs gives the certificates. Required.
	Certs *Chain
	// HandshakeTimeout bounds a TLS handshake, from the accept. 0 = 10s.
	HandshakeTimeout time.Duration
	// IdleTimeout is how long an HTTP/2 connection with no stream open is
	// kept. 0 = H1's IdleTimeout (or its ReadHeaderTimeout), as on
	// HTTP/1.1.
	IdleTimeout time.Duration
	// NoHTTP2 leaves "h2" out of ALPN: every client speaks HTTP/1.1.
	NoHTTP2 bool
	// HTTP2Server chooses the server of the connections that chose "h2":
	// HTTP2Cutover or HTTP2Go. "" = DefaultHTTP2Server.
	HTTP2Server string
	// ErrorLog receives accept errors and HTTP/2's connection errors.
	// nil = H1's ErrorLog, else the log package's standard logger.
	ErrorLog *log.Logger
}

// Server serves HTTPS on the connections its listener accepts: HTTP/2 or
// HTTP/1.1 by ALPN (see the package documentation). Use NewServer.
type Server struct {
	opts   Options
	config *tls.Config
	h2     *http.Server  // net/http's, with HTTP2Go
	h2ln   *connListener // h2's listener
	h2c    *h2.Server    // cutover's, with HTTP2Cutover

	inShutdown atomic.Bool
	mu         sync.Mutex
	ln         net.Listener // the one being served; nil before and after
	// handshaking counts the connections between accept and hand-over;
	// Shutdown waits for them. Added to under mu, only before Shutdown.
	handshaking sync.WaitGroup
	h2Started   sync.Once

	// open counts the client connections, peak the most since the last
	// TakePeakConns.
	open, peak atomic.Int64
}

// NewServer returns a Server with opts.
func NewServer(opts Options) *Server {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = opts.H1.IdleTimeout
		if opts.IdleTimeout <= 0 {
			opts.IdleTimeout = opts.H1.ReadHeaderTimeout
		}
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = opts.H1.ErrorLog
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = log.Default()
	}
	if opts.HTTP2Server == "" {
		opts.HTTP2Server = DefaultHTTP2Server
	}
	s := &Server{opts: opts, config: opts.Certs.Config(opts.NoHTTP2), h2ln: newConnListener()}
	if opts.HTTP2Server == HTTP2Cutover {
		s.h2c = &h2.Server{
			Handler:           opts.Handler,
			ReadHeaderTimeout: opts.H1.ReadHeaderTimeout,
			IdleTimeout:       opts.IdleTimeout,
			MaxHeaderBytes:    opts.H1.MaxHeaderBytes,
			ErrorLog:          opts.ErrorLog,
			// As net/http's server offers it (GODEBUG, package xconnect).
			ExtendedConnect: xconnect.Enabled(),
		}
		return s
	}
	s.h2 = &http.Server{
		Handler:           opts.Handler,
		ReadHeaderTimeout: opts.H1.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.H1.MaxHeaderBytes,
		ErrorLog:          opts.ErrorLog,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				s.open.Add(-1)
			}
		},
	}
	return s
}

// TLSConfig returns the server's tls.Config (for tests and tools; it must
// not be changed).
func (s *Server) TLSConfig() *tls.Config { return s.config }

// Serve accepts TLS connections on ln (a plain TCP listener: the server
// does the handshakes) until ln fails or the server is shut down. It
// closes ln before returning; after Shutdown or Close it returns
// http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	defer ln.Close() //nolint:errcheck // closing twice (after Shutdown) tells nothing
	s.h2Started.Do(func() {
		if s.h2 == nil {
			return
		}
		// Serve ends with Shutdown or Close, with ErrServerClosed; the
		// connections it serves are waited for by Shutdown.
		go func() { _ = s.h2.Serve(s.h2ln) }()
	})
	var delay time.Duration
	for {
		rw, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.opts.ErrorLog.Printf("tls: accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.mu.Lock()
		if s.inShutdown.Load() {
			s.mu.Unlock()
			_ = rw.Close() // accepted as Shutdown began: nothing was read
			return http.ErrServerClosed
		}
		s.handshaking.Add(1)
		s.mu.Unlock()
		s.countOpen()
		go s.serveConn(rw)
	}
}

// countOpen counts a new connection and keeps the peak.
func (s *Server) countOpen() {
	n := s.open.Add(1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// serveConn does rw's handshake and hands the connection to the server
// of the protocol it chose.
func (s *Server) serveConn(rw net.Conn) {
	tc := tls.Server(rawSocket(rw), s.config)
	proto, ok := s.handshake(tc)
	s.handshaking.Done()
	if !ok {
		s.open.Add(-1)
		return
	}
	switch proto {
	case "h2":
		if s.h2c != nil {
			s.h2c.ServeConn(tc)
			s.open.Add(-1)
			return
		}
		// h2's ConnState counts it closed once it serves it.
		if !s.h2ln.push(tc) {
			s.open.Add(-1)
		}
	case ALPNChallenge:
		// The challenge was answered by the handshake itself.
		_ = tc.Close()
		s.open.Add(-1)
	default:
		s.opts.H1.ServeConn(tc)
		s.open.Add(-1)
	}
}

// rawSocket returns rw reading and writing its socket through package
// rawio, as the plain listener's connections do (see there: system calls
// the scheduler does not hand the thread off for), or rw itself when it
// has no socket. Deadlines, Close and addresses stay rw's.
func rawSocket(rw net.Conn) net.Conn {
	if rio := rawio.New(rw); rio != nil {
		return &rawConn{Conn: rw, rio: rio}
	}
	return rw
}

// rawConn is a net.Conn whose Read and Write are rawio's.
type rawConn struct {
	net.Conn
	rio *rawio.Conn
}

func (c *rawConn) Read(p []byte) (int, error)  { return c.rio.Read(p) }
func (c *rawConn) Write(p []byte) (int, error) { return c.rio.Write(p) }

// handshake does tc's handshake within HandshakeTimeout and returns the
// protocol chosen; ok is false (and tc closed) when it failed.
func (s *Server) handshake(tc *tls.Conn) (proto string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.HandshakeTimeout)
	defer cancel()
	// The deadline bounds a client that stops reading, which the
	// context alone does not interrupt on every platform.
	_ = tc.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		// A scanner, a client that gave up, a name without certificate:
		// nothing the operator can act on per connection.
		_ = tc.Close()
		return "", false
	}
	_ = tc.SetDeadline(time.Time{})
	return tc.ConnectionState().NegotiatedProtocol, true
}

// Shutdown stops the server gracefully: it closes the listener, waits for
// the handshakes under way, then shuts down the HTTP/1.1 server (idle
// connections close, busy ones finish their request) and the HTTP/2 one
// (GOAWAY, streams in flight finish) together, until none is left or ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.inShutdown.Store(true)
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.handshaking.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	var wg sync.WaitGroup
	var err1, err2 error
	wg.Add(2)
	go func() { defer wg.Done(); err1 = s.opts.H1.Shutdown(ctx) }()
	go func() {
		defer wg.Done()
		if s.h2c != nil {
			err2 = s.h2c.Shutdown(ctx)
		} else {
			err2 = s.h2.Shutdown(ctx)
		}
	}()
	wg.Wait()
	s.h2ln.Close() //nolint:errcheck // always nil
	return errors.Join(err1, err2)
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.inShutdown.Store(true)
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.mu.Unlock()
	s.h2ln.Close() //nolint:errcheck // always nil
	if s.h2c != nil {
		return errors.Join(s.opts.H1.Close(), s.h2c.Close())
	}
	return errors.Join(s.opts.H1.Close(), s.h2.Close())
}

// TakePeakConns returns the most client connections the server held at
// once since the last call, and how many it holds now, as
// h1.Server.TakePeakConns (the daemon's memory trimmer reads it).
func (s *Server) TakePeakConns() (peak, now int) {
	n := s.open.Load()
	p := s.peak.Swap(n)
	return int(max(p, n)), int(n)
}

// connListener is a net.Listener whose connections are pushed to it: the
// HTTP/2 server's, fed the connections whose handshake chose "h2".
type connListener struct {
	ch        chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

// push hands c to the server accepting, or closes it and reports false
// when the listener is closed.
func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		_ = c.Close()
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return dummyAddr{} }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "tls" }
func (dummyAddr) String() string  { return "tls" }
