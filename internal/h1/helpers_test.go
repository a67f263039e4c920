package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ioTimeout bounds every network exchange of a test: nothing a test waits
// for on a loopback connection should take anywhere near that long.
const ioTimeout = 5 * time.Second

// listen opens a TCP listener on the loopback interface.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	return ln
}

// startH1 serves s on a new loopback listener until the test ends, and
// returns the listener's address. At the end Serve must have returned
// ErrServerClosed. The handler is wrapped to answer the probes of
// expectOpen itself.
func startH1(t testing.TB, s *Server) string {
	t.Helper()
	if s.ErrorLog == nil {
		s.ErrorLog = log.New(io.Discard, "", 0)
	}
	if s.Handler != nil {
		s.Handler = answerProbes(s.Handler)
	}
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		select {
		case err := <-done:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("h1 Serve returned %v after Close, want http.ErrServerClosed", err)
			}
		case <-time.After(ioTimeout):
			t.Errorf("h1 Serve did not return within %v of Close", ioTimeout)
		}
	})
	return ln.Addr().String()
}

// probePath is the path of expectOpen's probes.
const probePath = "/probe"

// answerProbes answers expectOpen's probes with 200 "probe" and passes
// every other request to h.
func answerProbes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == probePath {
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "probe")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// startStd serves h with net/http's server, configured like the h1 server
// it is compared with, on a new loopback listener until the test ends.
func startStd(t testing.TB, h http.Handler, maxHeaderBytes int) string {
	t.Helper()
	return startStdServer(t, &http.Server{Handler: h, MaxHeaderBytes: maxHeaderBytes})
}

// startStdServer serves s on a new loopback listener until the test ends.
func startStdServer(t testing.TB, s *http.Server) string {
	t.Helper()
	s.ErrorLog = log.New(io.Discard, "", 0)
	ln := listen(t)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return ln.Addr().String()
}

// newH1 starts an h1 server for h with the defaults and returns its address.
func newH1(t testing.TB, h http.Handler) string {
	t.Helper()
	return startH1(t, &Server{Handler: h})
}

// client is a raw client connection: bytes are written as given and
// answers are parsed with http.ReadResponse.
type client struct {
	t  testing.TB
	c  *net.TCPConn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	return &client{t: t, c: c.(*net.TCPConn), br: bufio.NewReader(c)}
}

// write sends raw bytes in one write.
func (c *client) write(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, raw); err != nil {
		c.t.Fatalf("writing %q: %v", raw, err)
	}
}

// response reads the next answer (interim 1xx answers included) to a
// request with the given method, body included.
func (c *client) response(method string) (*http.Response, string, error) {
	c.t.Helper()
	return readResponse(c.br, method)
}

// mustResponse is response failing the test on an error.
func (c *client) mustResponse(method, sent string) (*http.Response, string) {
	c.t.Helper()
	resp, body, err := c.response(method)
	if err != nil {
		c.t.Fatalf("after sending %q: reading the answer: %v", sent, err)
	}
	return resp, body
}

// readResponse reads one response and its whole body.
func readResponse(br *bufio.Reader, method string) (*http.Response, string, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(b), err
}

// expectClosed checks that the server closes the connection: a read
// returns EOF (or a reset) instead of data or a timeout.
func (c *client) expectClosed(what string) {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := c.br.ReadByte()
	switch {
	case err == nil:
		rest, _ := c.br.Peek(c.br.Buffered())
		c.t.Fatalf("%s: the connection should be closed, but the server sent %q", what, append([]byte{b}, rest...))
	case isTimeout(err):
		c.t.Fatalf("%s: the connection should be closed, but it is still open after %v", what, ioTimeout)
	case !isClosedErr(err):
		c.t.Fatalf("%s: the connection should be closed, read got %v", what, err)
	}
}

// expectOpen checks that the connection still serves requests: a GET of
// probePath is answered 200 "probe" (see answerProbes).
func (c *client) expectOpen(what string) {
	c.t.Helper()
	const probe = "GET " + probePath + " HTTP/1.1\r\nHost: probe\r\n\r\n"
	if _, err := io.WriteString(c.c, probe); err != nil {
		c.t.Fatalf("%s: the connection should still be open; writing a probe failed: %v", what, err)
	}
	resp, body, err := c.response("GET")
	if err != nil {
		c.t.Fatalf("%s: the connection should still be open; the probe request got %v", what, err)
	}
	if resp.StatusCode != http.StatusOK || body != "probe" {
		c.t.Fatalf("%s: the probe request got %s %q, want 200 \"probe\"", what, resp.Status, body)
	}
}

// expectSilence checks that nothing arrives from the server for d.
func (c *client) expectSilence(d time.Duration, what string) {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	defer func() { _ = c.c.SetReadDeadline(time.Now().Add(ioTimeout)) }()
	if _, err := c.br.Peek(1); err == nil {
		rest, _ := c.br.Peek(c.br.Buffered())
		c.t.Fatalf("%s: expected no bytes from the server yet, got %q", what, rest)
	} else if !isTimeout(err) {
		c.t.Fatalf("%s: expected no bytes from the server yet, read got %v", what, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isClosedErr reports whether err is what a read returns on a connection
// the peer closed.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}

// lockedBuffer is a bytes.Buffer safe for a logger writing in one goroutine
// and a test reading in another.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// recv waits for a value on ch for at most ioTimeout.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ioTimeout):
		t.Fatalf("timed out after %v waiting for %s", ioTimeout, what)
		panic("unreachable")
	}
}

// stdClient is a net/http client that never reuses a connection of
// another test and never goes through a proxy.
func stdClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout}
}

// connStates records the ConnState transitions of a server's connections,
// keyed by the client's address.
type connStates struct {
	mu     sync.Mutex
	states map[string][]http.ConnState
	// changed is signalled (without blocking) at each transition.
	changed chan struct{}
}

func newConnStates() *connStates {
	return &connStates{states: make(map[string][]http.ConnState), changed: make(chan struct{}, 1)}
}

func (cs *connStates) hook(c net.Conn, st http.ConnState) {
	cs.mu.Lock()
	k := c.RemoteAddr().String()
	cs.states[k] = append(cs.states[k], st)
	cs.mu.Unlock()
	select {
	case cs.changed <- struct{}{}:
	default:
	}
}

func (cs *connStates) get(clientAddr string) []http.ConnState {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]http.ConnState(nil), cs.states[clientAddr]...)
}

// waitFor waits until the connection's last state is st.
func (cs *connStates) waitFor(t testing.TB, clientAddr string, st http.ConnState) []http.ConnState {
	t.Helper()
	deadline := time.After(ioTimeout)
	for {
		got := cs.get(clientAddr)
		if len(got) > 0 && got[len(got)-1] == st {
			return got
		}
		select {
		case <-cs.changed:
		case <-deadline:
			t.Fatalf("connection %s never reached state %v; states: %v", clientAddr, st, got)
		}
	}
}

// isDeadlineErr reports whether err comes from a deadline that passed.
func isDeadlineErr(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err)
}

// ctxCanceledWithin reports whether ctx is canceled within d.
func ctxCanceledWithin(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return true
	case <-time.After(d):
		return false
	}
}

// closedWithin reports whether ch is closed within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// headerBlock returns the raw header block of the first response in raw.
func headerBlock(raw string) string {
	if i := strings.Index(raw, "\r\n\r\n"); i >= 0 {
		return raw[:i+2]
	}
	return raw
}

// abbrev shortens s for failure messages: long runs of one byte (the
// padding of oversized headers) are elided, and what is left is cut after
// 1500 bytes.
func abbrev(s string) string {
	const max = 1500
	out := abbrevRuns(s)
	if len(out) > max {
		out = fmt.Sprintf("%s…(%d more bytes)", out[:max], len(out)-max)
	}
	return out
}

func abbrevRuns(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if j-i > 16 {
			fmt.Fprintf(&b, "%s…(%d×%q)", s[i:i+8], j-i, s[i])
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}
