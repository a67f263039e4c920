package h1

import (
	"bufio"
	"crypto/tls"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/cutover/cutover/internal/rawio"
)

// maxPostHandlerReadBytes bounds the unread rest of a request body the
// server reads after the handler to keep the connection, as net/http's.
const maxPostHandlerReadBytes = 256 << 10

// conn is one client connection.
type conn struct {
	s          *Server
	rwc        net.Conn
	remoteAddr string
	// tls is the connection's TLS state when it is a *tls.Conn whose
	// handshake is done (ServeConn), given to every request as
	// Request.TLS; nil on a plain connection.
	tls *tls.ConnectionState
	// r bounds what the reads of a request's head may take; br reads
	// through it, from the socket through rawio when it can; wr writes to
	// it likewise.
	r  limitReader
	wr io.Writer
	br *bufio.Reader
	// state packs the http.ConnState (low byte) and, for StateNew, the
	// Unix millisecond it was entered (the rest), for Shutdown.
	state atomic.Int64
	// w is the response being written; one per connection, reset for
	// each request.
	w response
	// simple is the last request read by parseSimpleRequest, hdr its
	// header map (made on first use) and url its URL (unless its target
	// needed the full parser), kept from one request to the next.
	simple http.Request
	hdr    http.Header
	url    url.URL
	// lastMethod is the previous request's method.
	lastMethod string
	// hijacked is set once a handler took the connection over.
	hijacked bool
	// rdl is the read deadline the connection's goroutine set last;
	// rdlKnown is false when something else may have changed it since.
	rdl      time.Time
	rdlKnown bool

	// Watching for the client leaving while a handler runs (see arm).
	watchMu sync.Mutex
	// watch runs tick every clientGoneDelay while ticking; made on first
	// use.
	watch   *time.Timer
	ticking bool
	// armed is set while the current request may be watched; armSeq
	// counts the requests armed, seenSeq is the one the last tick saw.
	armed           bool
	armSeq, seenSeq uint64
	// watched is set once watchClient changed the read deadline.
	watched bool
	// watching is set while watchClient reads; watchDone is closed when it
	// stops; aborted is set when the read was interrupted on purpose.
	watching, aborted bool
	watchDone         chan struct{}
	// ctx is the current request's context, nil between requests.
	ctx *requestContext
	// gone is set when the client was seen closing the connection.
	gone bool
}

func (s *Server) newConn(rwc net.Conn) *conn {
	c := &conn{s: s, rwc: rwc, remoteAddr: rwc.RemoteAddr().String()}
	c.r.rd, c.wr = rwc, rwc
	if rio := rawio.New(rwc); rio != nil {
		c.r.rd, c.wr = rio, rio
	}
	if tc, ok := rwc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		if st.HandshakeComplete {
			c.tls = &st
		}
	}
	c.r.remain = math.MaxInt64
	c.w.c = c
	return c
}

func (c *conn) setState(st http.ConnState) {
	var since int64
	if st == http.StateNew {
		// Only the time of a new connection is of use (to Shutdown).
		since = time.Now().UnixMilli()
	}
	c.state.Store(since<<8 | int64(st))
	if hook := c.s.ConnState; hook != nil {
		hook(c.rwc, st)
	}
}

func (c *conn) getState() (http.ConnState, int64) {
	v := c.state.Load()
	return http.ConnState(v & 0xff), v >> 8
}

// setReadTimeout sets the connection's read deadline d from now; 0 = none.
func (c *conn) setReadTimeout(d time.Duration) {
	var t time.Time
	if d > 0 {
		t = time.Now().Add(d)
	}
	c.setReadDeadline(t)
}

// setReadDeadline sets the connection's read deadline and remembers it.
func (c *conn) setReadDeadline(t time.Time) {
	// A failure means the connection is closed; the read reports it.
	_ = c.rwc.SetReadDeadline(t)
	c.rdl, c.rdlKnown = t, true
}

// setWaitTimeout sets the read deadline d from now for the wait for a
// request, unless the deadline already set is at most d/16 (and at most
// a second) earlier: a connection answering request after request then
// does not move its deadline each time.
func (c *conn) setWaitTimeout(d time.Duration) {
	if d <= 0 {
		if !c.rdlKnown || !c.rdl.IsZero() {
			c.setReadDeadline(time.Time{})
		}
		return
	}
	want := time.Now().Add(d)
	if c.rdlKnown && KeepDeadline(c.rdl, want, d) {
		return
	}
	c.setReadDeadline(want)
}

// KeepDeadline reports whether set, the deadline a connection has (zero:
// none), may stand for a wait of d ending at want: it is not later than
// want and at most d/16 (and at most a second) earlier. A connection
// serving request after request then does not move its deadline, a timer
// update, each time. The proxy's upstream connections use it too.
func KeepDeadline(set, want time.Time, d time.Duration) bool {
	slack := min(d/16, time.Second)
	return !set.IsZero() && !set.After(want) && !set.Before(want.Add(-slack))
}

// serve reads requests from the connection and answers them, one at a
// time, until the connection ends or one of its requests asks to close it.
//
// Read deadlines: the wait for a request is bounded by IdleTimeout
// (ReadHeaderTimeout for the first), its line and headers by
// ReadHeaderTimeout from their first byte (unless they came in whole with
// it), its body by nothing.
func (c *conn) serve() {
	s := c.s
	c.setState(http.StateNew)
	s.add(c)
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(&c.r)
	defer c.end()

	handler := s.Handler
	if handler == nil {
		handler = http.NotFoundHandler()
	}
	first := true
	for {
		// The wait reads at most one buffer; readRequest bounds the rest
		// of the head.
		if c.br.Buffered() == 0 {
			if first {
				c.setReadTimeout(s.ReadHeaderTimeout)
			} else {
				c.setWaitTimeout(s.idleTimeout())
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		c.setState(http.StateActive)
		if !first && !headerBuffered(c.br) {
			// From its first byte on, a request is bounded by
			// ReadHeaderTimeout (none when 0), not by the idle wait's.
			c.setReadTimeout(s.ReadHeaderTimeout)
		}
		first = false

		req, mustClose, err := c.readRequest()
		if err != nil {
			c.refuse(err)
			return
		}
		if req.Body != http.NoBody && req.Body != nil {
			// The body may take its time: a long upload, a stream.
			c.setReadDeadline(time.Time{})
		}
		if !c.handle(handler, req, mustClose) {
			return
		}
		c.setState(http.StateIdle)
	}
}

// end closes a connection the server still owns.
func (c *conn) end() {
	if v := recover(); v != nil {
		c.s.panicked(c, v)
		c.watchMu.Lock()
		ctx := c.ctx
		c.watchMu.Unlock()
		c.disarm()
		if ctx != nil {
			ctx.cancel()
		}
		// What the handler wrote so far goes out; a body cut short is
		// then seen as such by the client.
		c.w.release(true)
	}
	if c.hijacked {
		return
	}
	_ = c.rwc.Close()
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
	c.s.remove(c)
	c.setState(http.StateClosed)
}

// rstAvoidanceDelay is how long closeWriteAndWait lets the client read
// what was sent before the socket closes, as net/http.
const rstAvoidanceDelay = 500 * time.Millisecond

// closeWriteAndWait half-closes the connection and waits a little before
// the full close, so that a client still sending does not get a reset that
// would destroy the answer in its receive buffer.
func (c *conn) closeWriteAndWait() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	time.Sleep(rstAvoidanceDelay)
}

// handle runs the handler for req and finishes its response, closing the
// connection after it when mustClose. It reports whether the connection may
// serve another request.
func (c *conn) handle(handler http.Handler, req *http.Request, mustClose bool) bool {
	w := &c.w
	w.reset(req)
	if mustClose {
		w.closeAfter = true
	}
	if ex := req.Header["Expect"]; len(ex) > 0 {
		if httpguts.HeaderValuesContainsToken(ex, "100-continue") {
			// An HTTP/1.0 client does not wait for 100 Continue (RFC 9110
			// section 10.1.1): the expectation is ignored.
			if req.ProtoAtLeast(1, 1) && req.ContentLength != 0 {
				w.expectContinue = true
			}
		} else if ex[0] != "" || len(ex) > 1 {
			w.header["Connection"] = valuesClose
			w.WriteHeader(http.StatusExpectationFailed)
			w.finish()
			return false
		}
	}
	ctx := newRequestContext()
	c.watchMu.Lock()
	c.ctx = ctx
	c.watchMu.Unlock()
	// In place: WithContext is inlined and its copy stays on the stack,
	// where a req = req.WithContext(ctx) would cost an allocation of the
	// whole request per request. req is the connection's own (simple) or
	// one http.ReadRequest made for this request only.
	*req = *req.WithContext(ctx)
	if req.Body == http.NoBody || req.Body == nil {
		w.bodyDone.Store(true)
		c.arm()
	} else {
		w.body = reqBody{rc: req.Body, w: w}
		req.Body = &w.body
	}
	handler.ServeHTTP(w, req)
	c.disarm()
	ctx.cancel()
	if c.hijacked {
		return false
	}
	ok := w.finish()
	if !ok || c.gone || c.s.inShutdown.Load() {
		return false
	}
	return true
}

// reqBody is a request body as the handler sees it: it sends 100 Continue
// before the first read when the client waits for it, tells the response
// when the body was read to its end, and starts the client watch then.
type reqBody struct {
	rc io.ReadCloser
	w  *response
}

func (b *reqBody) Read(p []byte) (int, error) {
	w := b.w
	if w.bodyDone.Load() {
		return 0, io.EOF
	}
	if w.expectContinue && !w.continueTried.Swap(true) {
		w.writeContinue()
	}
	n, err := b.rc.Read(p)
	if err != nil {
		if err == io.EOF { //nolint:errorlint // the body returns it as is
			w.bodyDone.Store(true)
			w.c.arm()
		} else {
			w.bodyFailed.Store(true)
		}
	}
	return n, err
}

// Close marks the body as not to be read any more by the handler; the
// server decides after the handler whether to read what is left.
func (b *reqBody) Close() error { return nil }
