package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of Server's bounds on a request's head, as nginx's
// (large_client_header_buffers 4 8k: a request line in 8 KiB, headers in
// a few buffers of 8 KiB). net/http's 1 MiB let a head of a megabyte
// through to the handler, and 600 clients sending one took 750 MB of a
// daemon's memory.
const (
	// DefaultMaxRequestLineBytes is Server.MaxRequestLineBytes' default.
	DefaultMaxRequestLineBytes = 8 << 10
	// DefaultMaxHeaderBytes is Server.MaxHeaderBytes' default.
	DefaultMaxHeaderBytes = 64 << 10
)

// bufSize is the size of a connection's read buffer and of the pooled
// write buffers, as net/http's.
const bufSize = 4 << 10

// Server serves HTTP/1.x on the connections its listeners accept, one
// goroutine per connection, calling Handler for each request. The zero
// value serves with no timeouts; set Handler before Serve. Its fields
// must not change once Serve was called.
type Server struct {
	// Handler answers the requests.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's line and headers, from
	// its first byte (and the first request's wait for that byte). 0 =
	// no bound.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for its
	// next request. 0 = ReadHeaderTimeout.
	IdleTimeout time.Duration
	// MaxRequestLineBytes bounds a request's line (method, target,
	// version and the line's end), in bytes; a longer one gets 414 URI Too
	// Long. 0 = DefaultMaxRequestLineBytes (8 KiB).
	MaxRequestLineBytes int
	// MaxHeaderBytes bounds a request's head (its line, its header fields
	// and the empty line that ends them), in bytes; a longer one gets 431
	// Request Header Fields Too Large. Unlike net/http's, the bound is
	// exact. 0 = DefaultMaxHeaderBytes (64 KiB).
	MaxHeaderBytes int
	// ConnState, when set, is told of each connection's state changes with
	// net/http's states and meanings.
	ConnState func(net.Conn, http.ConnState)
	// ErrorLog receives handler panics and accept errors. nil = the log
	// package's standard logger.
	ErrorLog *log.Logger

	// slowOnly turns the fast path for simple requests off (simple.go),
	// so that tests can compare both paths.
	slowOnly bool

	inShutdown atomic.Bool
	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	peak       int // most conns since the last TakePeakConns
	// serving counts Serve calls in progress; Shutdown waits for them.
	serving sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Shutdown or Close: net/http's,
// so callers can treat both servers alike.
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections on ln and serves each on its own goroutine
// until ln fails or the server is shut down. It closes ln before
// returning; after Shutdown or Close it returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(&ln, true) {
		return ErrServerClosed
	}
	defer s.track(&ln, false)
	var delay time.Duration // how long to sleep on accept failure
	for {
		rw, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors and the like: wait for some to
				// be freed rather than spin or give up.
				delay = max(2*delay, 5*time.Millisecond)
				delay = min(delay, time.Second)
				s.logf("h1: accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(rw)
		go c.serve()
	}
}

// ServeConn serves c, a connection accepted elsewhere, until it ends,
// on the calling goroutine, as Serve serves the connections it accepts:
// the TLS listener (package tlsfront) hands over the connections whose
// handshake chose HTTP/1.1. A *tls.Conn must have completed its
// handshake; its state is then every request's Request.TLS. Shutdown
// and Close treat c as one of the server's own; after them, ServeConn
// closes c at once.
func (s *Server) ServeConn(c net.Conn) {
	if s.inShutdown.Load() {
		_ = c.Close() // nothing was read: the client reads a close
		return
	}
	s.newConn(c).serve()
}

// track adds ln to or removes it from the listeners Shutdown closes; adding
// fails once the server is shutting down.
func (s *Server) track(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = make(map[*net.Listener]struct{})
		}
		s.listeners[ln] = struct{}{}
		s.serving.Add(1)
		return true
	}
	// Closing twice (after Shutdown closed it) reports an error that tells
	// nothing.
	_ = (*ln).Close()
	delete(s.listeners, ln)
	s.serving.Done()
	return true
}

// shutdownPoll is how often Shutdown looks for connections that became
// idle; it starts small so an idle server stops at once.
const shutdownPollMax = 500 * time.Millisecond

// Shutdown stops the server gracefully: it closes the listeners, then
// closes each connection once it is idle (between requests, or new and
// silent for newQuietGrace: see there) and waits
// until none is left, or until ctx ends — then it returns ctx's error and
// the connections still busy keep going. A request that finishes after
// Shutdown began is answered with "Connection: close". Hijacked
// connections are not the server's any more and are not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	for ln := range s.listeners {
		_ = (*ln).Close()
	}
	s.mu.Unlock()
	s.serving.Wait()

	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		if s.closeIdle() {
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

// Close closes the listeners and every connection at once, cutting the
// requests in flight.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		_ = (*ln).Close()
	}
	for c := range s.conns {
		_ = c.rwc.Close()
	}
	return nil
}

// newQuietGrace is how long Shutdown lets a connection that has sent no
// byte yet keep its chance to send its first request; after it, the
// connection counts as idle and is closed.
//
// A client writes its request as soon as its connect completes, so that
// the bytes arrive within a round trip of the accept; a connection silent
// for longer is one opened ahead of need (a browser's preconnect, the
// spare dial of a client's pool) whose owner reads the close before it
// uses it, as it would an idle keep-alive connection's. net/http waits 5 s
// for these; a daemon handing over cannot: its shutdown, and with it the
// next daemon's start, would wait for a client that has nothing to ask
// (up to 5 s in which a stop and start of cutover serve refused a
// thousand connections at 500 req/s).
const newQuietGrace = 250 * time.Millisecond

// closeIdle closes the idle connections (and new ones that have been
// silent for newQuietGrace) and reports whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	quiet := true
	quietSince := time.Now().Add(-newQuietGrace).UnixMilli()
	for c := range s.conns {
		st, since := c.getState()
		if st == http.StateNew && since != 0 && since <= quietSince {
			st = http.StateIdle
		}
		if st != http.StateIdle {
			quiet = false
			continue
		}
		// Closing makes the connection's goroutine return, which removes
		// it from conns.
		_ = c.rwc.Close()
	}
	return quiet && len(s.conns) == 0
}

// add and remove keep the set of open connections for Shutdown and Close.
func (s *Server) add(c *conn) {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.peak = max(s.peak, len(s.conns))
	s.mu.Unlock()
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// TakePeakConns returns the most client connections the server held at
// once since the last call (or since it started), and how many it holds
// now (hijacked ones are not counted); the next call's peak starts from
// now.
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

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return DefaultMaxHeaderBytes
}

func (s *Server) maxRequestLineBytes() int {
	if s.MaxRequestLineBytes > 0 {
		return s.MaxRequestLineBytes
	}
	return DefaultMaxRequestLineBytes
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.ReadHeaderTimeout
}

// Buffers come from pools: a connection's reader lives as long as the
// connection; a writer is held only while a response is written.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

// panicked logs a handler panic other than http.ErrAbortHandler with its
// stack, as net/http does.
func (s *Server) panicked(c *conn, v any) {
	if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is what panics
		return
	}
	const size = 64 << 10
	buf := make([]byte, size)
	buf = buf[:runtime.Stack(buf, false)]
	s.logf("h1: panic serving %v: %v\n%s", c.remoteAddr, v, buf)
}

// discard is io.Discard as a writer without ReadFrom, for draining bodies
// through a bounded copy.
var discard = struct{ io.Writer }{io.Discard}
