package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/cutover/cutover/internal/rawio"
)

// clientGoneDelay is how long a request runs before its connection is
// watched for the client leaving. Watching costs a goroutine, a read that
// finds nothing and an interrupted deadline; most requests are answered
// sooner and skip it.
const clientGoneDelay = 20 * time.Millisecond

// maxPostHandlerReadBytes bounds the unread rest of a request body the
// server reads after the handler to keep the connection, as net/http's.
const maxPostHandlerReadBytes = 256 << 10

// aLongTimeAgo is a deadline that unblocks a pending read at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one client connection.
type conn struct {
	s          *Server
	rwc        net.Conn
	remoteAddr string
	// r limits what the header reads may take; br reads through it, from
	// the socket through rawio when it can; wr writes to it likewise.
	r  limitReader
	wr io.Writer
	br *bufio.Reader
	// state packs the http.ConnState (low byte) and, for StateNew, the
	// Unix second it was entered (the rest), for Shutdown.
	state atomic.Int64
	// w is the response being written; one per connection, reset for
	// each request.
	w response
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
	// watch fires watchClient after clientGoneDelay; made on first use.
	watch *time.Timer
	// armed is set while the current request may be watched.
	armed bool
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
	c.r.remain = math.MaxInt64
	c.w.c = c
	return c
}

// limitReader reads from the connection, returning io.EOF once remain
// bytes were read; it bounds the bytes a request's headers may take.
type limitReader struct {
	rd     io.Reader
	remain int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.remain {
		p = p[:l.remain]
	}
	n, err := l.rd.Read(p)
	l.remain -= int64(n)
	return n, err
}

func (c *conn) setState(st http.ConnState) {
	var since int64
	if st == http.StateNew {
		// Only the time of a new connection is of use (to Shutdown).
		since = time.Now().Unix()
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
	slack := min(d/16, time.Second)
	if c.rdlKnown && !c.rdl.IsZero() && !c.rdl.After(want) && !c.rdl.Before(want.Add(-slack)) {
		return
	}
	c.setReadDeadline(want)
}

// headerBuffered reports whether br holds the end of a request's header
// block already, so reading the headers cannot wait on the client.
func headerBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, crlfcrlf)
}

var crlfcrlf = []byte("\r\n\r\n")

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
		// The bound on a request's line and headers counts from the wait
		// for it; readRequest lifts it.
		c.r.remain = s.maxHeaderBytes() + bufSize
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

// readRequest reads the next request's line and headers with net/http's
// parser (its body framing, header validation and smuggling checks) and
// applies the checks net/http's server adds. mustClose tells that the
// connection must close after the answer.
func (c *conn) readRequest() (req *http.Request, mustClose bool, err error) {
	if c.lastMethod == http.MethodPost {
		// RFC 9112 section 2.2: tolerate a CRLF some old clients send after
		// a POST body.
		peek, _ := c.br.Peek(4)
		_, _ = c.br.Discard(leadingCRLF(peek))
	}
	// What http.ReadRequest does not keep (it drops the Host header and,
	// beside chunked, Content-Length) is read from the raw header block
	// when it is all in the buffer, as nearly always.
	buffered, _ := c.br.Peek(c.br.Buffered())
	head, scanned := scanHead(buffered)
	req, err = http.ReadRequest(c.br)
	if err != nil {
		if c.r.remain <= 0 {
			return nil, false, errHeaderTooLarge
		}
		return nil, false, err
	}
	c.r.remain = math.MaxInt64
	c.lastMethod = req.Method
	if req.ProtoMajor != 1 {
		return nil, false, statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	for k, vv := range req.Header {
		// textproto tolerates a space before the colon (go.dev/issue/34540):
		// "Content-Length : 5" must not be a header nobody frames by.
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, false, statusError{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, false, statusError{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	http11 := req.ProtoMinor >= 1
	if len(req.RequestURI) > 0 && req.RequestURI[0] == '/' {
		// Origin form: req.Host is the Host header's value. An empty Host
		// header is refused like a missing one.
		if req.Host == "" && http11 {
			return nil, false, statusError{http.StatusBadRequest, "missing required Host header"}
		}
	} else {
		// Absolute or authority form (or "*"): req.Host may come from the
		// target; the Host header is still required and checked.
		if !scanned {
			return nil, false, statusError{http.StatusBadRequest, "request target not in origin form, with a header block over " + strconv.Itoa(bufSize) + " bytes"}
		}
		if head.hosts == 0 && http11 && req.Method != http.MethodConnect {
			return nil, false, statusError{http.StatusBadRequest, "missing required Host header"}
		}
		if head.hosts > 1 || (head.hosts == 1 && !httpguts.ValidHostHeader(head.host)) {
			return nil, false, statusError{http.StatusBadRequest, "malformed Host header"}
		}
	}
	if !httpguts.ValidHostHeader(req.Host) {
		return nil, false, statusError{http.StatusBadRequest, "malformed Host header"}
	}
	if len(req.TransferEncoding) > 0 && (!scanned || head.contentLength) {
		// RFC 9112 section 6.1: a request framed by Transfer-Encoding that
		// also had a Content-Length (ReadRequest frames it by the former)
		// may be a smuggling attempt; the connection closes after the
		// answer. When the header block could not be read whole, every
		// chunked request is treated so.
		mustClose = true
	}
	req.RemoteAddr = c.remoteAddr
	return req, mustClose, nil
}

// rawHead is what scanHead read from a raw header block.
type rawHead struct {
	// hosts counts the Host fields; host is the value of the last.
	hosts int
	host  string
	// contentLength is set when a Content-Length field is present.
	contentLength bool
}

// scanHead reads the header block at the start of b: the fields
// http.ReadRequest drops. It reports false when b does not hold the whole
// block. A Host field continued on the next line (obs-fold) counts as an
// invalid Host.
func scanHead(b []byte) (rawHead, bool) {
	var h rawHead
	i := bytes.IndexByte(b, '\n') // the request line
	if i < 0 {
		return h, false
	}
	b = b[i+1:]
	lastHost := false
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return h, false
		}
		line := b[:i]
		b = b[i+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			return h, true
		}
		if line[0] == ' ' || line[0] == '\t' {
			if lastHost {
				h.host = "\x00" // not a valid Host
			}
			continue
		}
		lastHost = false
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // ReadRequest refuses it
		}
		switch {
		case len(name) == 4 && asciiEqualFold(name, "host"):
			h.hosts++
			h.host = string(bytes.Trim(value, " \t"))
			lastHost = true
		case len(name) == 14 && asciiEqualFold(name, "content-length"):
			h.contentLength = true
		}
	}
}

// asciiEqualFold reports whether b equals the lower-case ASCII s, ignoring
// case.
func asciiEqualFold(b []byte, s string) bool {
	for i := range len(s) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// leadingCRLF returns the number of CR and LF bytes b starts with.
func leadingCRLF(b []byte) int {
	n := 0
	for _, c := range b {
		if c != '\r' && c != '\n' {
			break
		}
		n++
	}
	return n
}

var errHeaderTooLarge = errors.New("request headers too large")

// statusError is a request refused with a status and a reason.
type statusError struct {
	code int
	text string
}

func (e statusError) Error() string { return http.StatusText(e.code) + ": " + e.text }

// refuse answers a request that could not be read, then the connection is
// closed: 431 for headers too large, 501 for a transfer coding other than
// chunked, 400 otherwise; nothing when the client went away or was too
// slow. The answers are net/http's.
func (c *conn) refuse(err error) {
	const errorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	var msg string
	var se statusError
	switch {
	case errors.Is(err, errHeaderTooLarge):
		const public = "431 Request Header Fields Too Large"
		msg = "HTTP/1.1 " + public + errorHeaders + public
	case isUnsupportedTE(err):
		msg = "HTTP/1.1 501 Not Implemented" + errorHeaders + "Unsupported transfer encoding"
	case isCommonNetReadError(err):
		return
	case errors.As(err, &se):
		text := http.StatusText(se.code) + ": " + se.text
		msg = "HTTP/1.1 " + itoa3(se.code) + " " + text + errorHeaders + itoa3(se.code) + " " + text
	default:
		const public = "400 Bad Request"
		msg = "HTTP/1.1 " + public + errorHeaders + public
	}
	_ = c.rwc.SetWriteDeadline(time.Now().Add(time.Second))
	// The connection closes next; a client that cannot be told is gone.
	_, _ = io.WriteString(c.rwc, msg)
	c.closeWriteAndWait()
}

// isUnsupportedTE reports whether err is http.ReadRequest refusing a
// transfer coding (its error type is unexported; its text is stable).
func isUnsupportedTE(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unsupported transfer encoding") || strings.HasPrefix(s, "too many transfer encodings")
}

// isCommonNetReadError reports whether err means the client left or was too
// slow rather than sent something wrong.
func isCommonNetReadError(err error) bool {
	if err == io.EOF { //nolint:errorlint // ReadRequest returns it as is
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "read"
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
	req = req.WithContext(ctx)
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

// arm starts watching, after clientGoneDelay, for the client closing the
// connection while the handler runs; the request's context is then
// canceled. Only a request whose body was read whole is watched: the
// watch reads the connection.
func (c *conn) arm() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.ctx == nil {
		return
	}
	c.armed = true
	if c.watch == nil {
		c.watch = time.AfterFunc(clientGoneDelay, c.watchClient)
		return
	}
	c.watch.Reset(clientGoneDelay)
}

// watchClient reads the connection until the client sends something or
// leaves, or disarm interrupts it.
func (c *conn) watchClient() {
	c.watchMu.Lock()
	if !c.armed || c.watching {
		// Disarmed, or a timer that fired before a disarm that came too
		// late to stop it already started the watch of the next request.
		c.watchMu.Unlock()
		return
	}
	c.watching = true
	c.watched = true
	c.watchDone = make(chan struct{})
	// The header deadline may still be set; the watch has none.
	_ = c.rwc.SetReadDeadline(time.Time{})
	c.watchMu.Unlock()

	// Bytes that come are the next (pipelined) request, kept in br.
	_, err := c.br.Peek(1)

	c.watchMu.Lock()
	if err != nil && !c.aborted {
		c.gone = true
		c.ctx.cancel()
	}
	c.watching = false
	close(c.watchDone)
	c.watchMu.Unlock()
}

// disarm stops the watch, interrupting its read, and waits for it.
func (c *conn) disarm() {
	c.watchMu.Lock()
	c.armed = false
	c.ctx = nil
	if c.watched {
		c.watched = false
		c.rdlKnown = false
	}
	if c.watch != nil {
		c.watch.Stop()
	}
	if !c.watching {
		c.watchMu.Unlock()
		return
	}
	c.aborted = true
	_ = c.rwc.SetReadDeadline(aLongTimeAgo)
	done := c.watchDone
	c.watchMu.Unlock()
	<-done
	c.watchMu.Lock()
	c.aborted = false
	c.watchMu.Unlock()
	_ = c.rwc.SetReadDeadline(time.Time{})
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
