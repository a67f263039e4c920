package h2

import (
	"context"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Server's bounds.
const (
	// DefaultMaxConcurrentStreams is Server.MaxConcurrentStreams'
	// default, as net/http's.
	DefaultMaxConcurrentStreams = 250
	// DefaultMaxHeaderBytes is Server.MaxHeaderBytes' default, as h1's.
	DefaultMaxHeaderBytes = 64 << 10
)

// Server serves HTTP/2 on connections handed to ServeConn. Set Handler
// before the first ServeConn; the fields must not change afterwards.
type Server struct {
	// Handler answers the requests.
	Handler http.Handler
	// ReadHeaderTimeout bounds the wait for the client's connection
	// preface and first SETTINGS. 0 = no bound.
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long a connection with no stream open is kept.
	// 0 = ReadHeaderTimeout; both 0 = no bound.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header list as RFC 9113 counts
	// it (each field's name and value plus 32 bytes), advertised as
	// SETTINGS_MAX_HEADER_LIST_SIZE; a larger list is answered 431.
	// 0 = DefaultMaxHeaderBytes (64 KiB).
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds the streams a client may have open on
	// one connection; more are refused (REFUSED_STREAM).
	// 0 = DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// ExtendedConnect offers the extended CONNECT method (RFC 8441,
	// SETTINGS_ENABLE_CONNECT_PROTOCOL): a client may open a WebSocket
	// as a stream, a CONNECT request with :protocol, :scheme and :path.
	// The handler gets it as net/http's server gives it: Method
	// "CONNECT", the path in URL, :protocol in the header map under
	// ":protocol".
	ExtendedConnect bool
	// ErrorLog receives handler panics and protocol errors worth
	// logging. nil = the log package's standard logger.
	ErrorLog *log.Logger

	inShutdown atomic.Bool
	mu         sync.Mutex
	conns      map[*conn]struct{}
	peak       int
}

// ServeConn serves c, a connection whose TLS handshake is complete and
// chose "h2" (a *tls.Conn: its state is every request's Request.TLS), on
// the calling goroutine until the connection ends and its handlers have
// returned. After Shutdown or Close it closes c at once.
func (s *Server) ServeConn(c net.Conn) {
	if s.inShutdown.Load() {
		_ = c.Close() // nothing was read: the client reads a close
		return
	}
	cc := newConn(s, c)
	// The server's preface goes first, before a GOAWAY of Shutdown can.
	if !cc.sendPreface() || !s.add(cc) {
		_ = c.Close()
		return
	}
	defer s.remove(cc)
	cc.serve()
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.peak = max(s.peak, len(s.conns))
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// shutdownPollMax bounds how often Shutdown looks whether the
// connections are gone; it starts at a millisecond.
const shutdownPollMax = 500 * time.Millisecond

// Shutdown stops the server gracefully: every connection is sent GOAWAY,
// its streams in flight finish, new ones are refused, and it closes once
// none is left. Shutdown returns when no connection is left, or with
// ctx's error when ctx ends first (the connections still busy keep
// going).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.inShutdown.Store(true)
	for c := range s.conns {
		// Not waited for: a connection whose client stopped reading
		// holds its write lock, and must not hold Shutdown past ctx.
		go c.goAway()
	}
	s.mu.Unlock()
	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			poll = min(2*poll, shutdownPollMax)
			t.Reset(poll)
		}
	}
}

// Close closes every connection at once, cutting the streams in flight.
func (s *Server) Close() error {
	s.mu.Lock()
	s.inShutdown.Store(true)
	for c := range s.conns {
		_ = c.rwc.Close()
	}
	s.mu.Unlock()
	return nil
}

// TakePeakConns returns the most connections the server held at once
// since the last call, and how many it holds now.
func (s *Server) TakePeakConns() (peak, now int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	peak, now = max(s.peak, len(s.conns)), len(s.conns)
	s.peak = now
	return peak, now
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// panicked logs a handler panic other than http.ErrAbortHandler with its
// stack, as net/http does.
func (s *Server) panicked(c *conn, v any) {
	if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is what panics
		return
	}
	const size = 64 << 10
	buf := make([]byte, size)
	buf = buf[:runtime.Stack(buf, false)]
	s.logf("h2: panic serving %v: %v\n%s", c.remoteAddr, v, buf)
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.ReadHeaderTimeout
}

func (s *Server) maxHeaderBytes() uint32 {
	if s.MaxHeaderBytes > 0 {
		return uint32(s.MaxHeaderBytes)
	}
	return DefaultMaxHeaderBytes
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams > 0 {
		return s.MaxConcurrentStreams
	}
	return DefaultMaxConcurrentStreams
}
