package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/h1"
)

// Upstream connections.
//
// Each backend keeps its own pool of idle HTTP/1.1 keep-alive connections
// (pool.go) and a request is exchanged on one of them from the handler's
// goroutine: the request is written by writeRequest (net/http's own
// writer, or writeBodiless for a bodiless request, which sends what that
// writer would) and the response read with http.ReadResponse, so framing,
// header sanitising and response parsing (and its smuggling checks) are
// net/http's; only a simple response (one Content-Length, the head in the
// strict form of readhead.go) is read without it, the same way. Unlike http.Transport there is no read-ahead goroutine per
// connection nor a write goroutine per request: a GET costs no goroutine
// switch in the proxy. Only a request with a body gets a goroutine, to
// stream the body while the response is read (full duplex).
//
// Without read-ahead, a connection the backend closed while it sat idle is
// only found out when it is used; a bodiless replayable request that meets
// such a connection before any response byte is sent again on a fresh one,
// as net/http does (golang.org/issue/4677).

// afterFuncer is a context that runs a function when it is canceled,
// with context.AfterFunc's contract.
type afterFuncer interface {
	AfterFunc(func()) (stop func() bool)
}

// max1xxResponses bounds the informational responses skipped before the
// final one, as net/http does.
const max1xxResponses = 5

// errUpgradeResponse is a 101 Switching Protocols answer to a request that
// did not ask for an upgrade.
var errUpgradeResponse = errors.New("backend switched protocols without an upgrade request")

// connLostError is a reused connection that failed before any byte of a
// response: the backend most likely closed it while it was idle.
type connLostError struct{ err error }

func (e *connLostError) Error() string { return "upstream connection lost: " + e.err.Error() }
func (e *connLostError) Unwrap() error { return e.err }

// Buffers of upstream connections come from pools and go back while the
// connection is idle, so an idle connection costs its socket only. A
// request is written in one go, so the writer is held only that long.
var (
	upReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, upBufSize) }}
	upWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, upBufSize) }}
)

// upBufSize is the size of the buffers of upstream connections.
const upBufSize = 4 << 10

// upConn is one upstream connection.
type upConn struct {
	b    *Backend
	conn net.Conn
	// closeFn is close as a func value, made once for context.AfterFunc.
	closeFn func()
	// rd and wr read and write conn's socket, through rawio when they can.
	rd io.Reader
	wr io.Writer
	// br reads responses; nil while the connection is idle.
	br *bufio.Reader
	// reused is set once the connection has served a response.
	reused bool
	// idleSince is when the connection was put back in the pool.
	idleSince time.Time
	// written counts bytes written to conn during the current exchange.
	written int64
	// rdl is the read deadline set last (zero: none).
	rdl time.Time

	// The fields below belong to the current exchange.
	// stop unregisters the context hook that closes conn when the client
	// goes away.
	stop func() bool
	// wdone receives the result of writing a request body, nil when the
	// request had none.
	wdone chan error
	// w is the client's response writer, to unblock a body write stuck
	// reading the client.
	w http.ResponseWriter
	// body is the response body of the current exchange; fixed is what it
	// reads from when the response was simple.
	body  upBody
	fixed fixedBody
	// sent wraps the request body being written, when there is one.
	sent sentBody
	// closeAfter is set when the connection must not be reused after the
	// exchange (either side asked to close).
	closeAfter bool
}

// Write counts what reaches the connection, so that a failed write is
// known to have sent nothing.
func (c *upConn) Write(p []byte) (int, error) {
	n, err := c.wr.Write(p)
	c.written += int64(n)
	return n, err
}

// ReadFrom copies a request body to the connection through a pooled
// 32 KiB buffer: bufio.Writer hands large copies to it, which would
// otherwise go through the writer's 4 KiB buffer, one write each.
func (c *upConn) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// The wrapper hides ReadFrom from io.CopyBuffer, which would call it.
	return io.CopyBuffer(struct{ io.Writer }{c}, r, *bp)
}

// close closes the connection. Errors closing a connection being thrown
// away tell nothing useful.
func (c *upConn) close() { _ = c.conn.Close() }

// roundTrip sends out to the backend on a pooled connection and returns
// the response; closing its body releases the connection (back to the
// pool when it can serve another request). w is the client's response
// writer, used only when out has a body. A simple response is read into
// in (nil: never), and is then valid as long as in is. A reused
// connection that turns out closed before any response byte is replaced
// by a fresh one for a request that may be replayed.
func (b *Backend) roundTrip(ctx context.Context, w http.ResponseWriter, out *http.Request, in *inbound) (*http.Response, error) {
	if b.h2 != nil {
		return b.roundTripH2C(ctx, out)
	}
	c, err := b.take(ctx)
	if err != nil {
		// Nothing was sent; the caller may send out elsewhere, body
		// included, or closes its body.
		return nil, err
	}
	resp, err := c.exchange(ctx, w, out, in)
	if err == nil || !isConnLost(err) || ctx.Err() != nil {
		return resp, err
	}
	if out.Body != nil || (c.written > 0 && !replayable(out)) {
		return nil, err
	}
	c, err = b.dial(ctx)
	if err != nil {
		return nil, err
	}
	return c.exchange(ctx, w, out, in)
}

// isConnLost reports whether err is a *connLostError. A function of its
// own so that the target of errors.As is allocated only on this path.
func isConnLost(err error) bool {
	var lost *connLostError
	return errors.As(err, &lost)
}

// replayable reports whether the bodiless request out may be sent again
// after the backend may have received it: an idempotent method, or an
// idempotency key, as net/http decides.
func replayable(out *http.Request) bool {
	if idempotent(out.Method) {
		return true
	}
	_, ok := out.Header["Idempotency-Key"]
	if !ok {
		_, ok = out.Header["X-Idempotency-Key"]
	}
	return ok
}

// exchange writes out on c and reads its response, into in when it is
// simple (readSimpleResponse) and in is not nil. On error c is closed.
func (c *upConn) exchange(ctx context.Context, w http.ResponseWriter, out *http.Request, in *inbound) (*http.Response, error) {
	c.written = 0
	c.closeAfter = out.Close
	if c.br == nil {
		c.br = upReaders.Get().(*bufio.Reader)
		c.br.Reset(c.rd)
	}
	// The client going away ends the exchange: closing the connection
	// unblocks whatever is waiting on the backend.
	if af, ok := ctx.(afterFuncer); ok {
		// The proxy server's request contexts (h1) register the hook
		// without the allocations and locking of context.AfterFunc.
		c.stop = af.AfterFunc(c.closeFn)
	} else {
		c.stop = context.AfterFunc(ctx, c.closeFn)
	}
	if out.Body == nil {
		if err := c.writeRequest(out); err != nil {
			c.finish(false)
			if c.reused {
				return nil, &connLostError{err: err}
			}
			return nil, err
		}
	} else {
		c.w = w
		c.wdone = make(chan error, 1)
		c.sent = sentBody{rc: out.Body}
		out.Body = &c.sent
		go c.writeBody(out)
	}

	c.setHeaderDeadline(c.b.p.opts.ResponseHeaderTimeout)
	if _, err := c.br.Peek(1); err != nil {
		c.finish(false)
		if c.reused && !isTimeout(err) {
			return nil, &connLostError{err: err}
		}
		return nil, err
	}
	var resp *http.Response
	for n1xx := 0; ; n1xx++ {
		var err error
		if in != nil && readSimpleResponse(c.br, out, &in.resp, in.hdr, &c.fixed) {
			resp = &in.resp
		} else {
			resp, err = http.ReadResponse(c.br, out)
		}
		if err != nil {
			c.finish(false)
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			break
		}
		// Informational answers (100 Continue, 103 Early Hints) precede the
		// real one; the client's own server sends 100 Continue itself.
		if n1xx == max1xxResponses {
			c.finish(false)
			return nil, errors.New("backend sent more than " + strconv.Itoa(max1xxResponses) + " informational responses")
		}
	}
	if resp.Body != http.NoBody && (resp.ContentLength < 0 || int64(c.br.Buffered()) < resp.ContentLength) {
		// The body is still to come from the connection, at its own pace.
		// A small answer is usually already buffered whole: then the
		// deadline cannot fire, and the next exchange sets its own, which
		// saves a timer update per request.
		c.setReadDeadline(time.Time{})
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		c.finish(false)
		return nil, errUpgradeResponse
	}
	if resp.Close {
		c.closeAfter = true
	}
	if resp.Body == http.NoBody {
		c.finish(true)
		return resp, nil
	}
	// The body wrapper lives in the connection: one exchange at a time
	// uses it, and nothing reads a body after closing it.
	c.body = upBody{rc: resp.Body, c: c}
	resp.Body = &c.body
	return resp, nil
}

// setHeaderDeadline bounds the wait for a response head to d from now,
// unless the deadline already set may stand (h1.KeepDeadline).
func (c *upConn) setHeaderDeadline(d time.Duration) {
	want := time.Now().Add(d)
	if h1.KeepDeadline(c.rdl, want, d) {
		return
	}
	c.setReadDeadline(want)
}

// setReadDeadline sets the connection's read deadline and remembers it.
func (c *upConn) setReadDeadline(t time.Time) {
	// Errors setting a deadline only come from a closed connection, which
	// the read reports.
	_ = c.conn.SetReadDeadline(t)
	c.rdl = t
}

// writeBody writes the request out, body included, and reports on wdone.
// A body that fails to read (the client's malformed chunk, a stall, a
// connection cut) aborts the exchange: the connection is closed at once,
// so the app sees its request body fail rather than wait for the rest or
// take what came for the whole, and the response wait ends.
func (c *upConn) writeBody(out *http.Request) {
	err := c.writeRequest(out)
	if err != nil && c.sent.err != nil {
		c.close()
	}
	c.wdone <- err
}

// writeRequest writes out, body included. A bodiless request whose
// target is in origin form ("/path?query", as browsers send) is written
// by writeBodiless; any other with net/http's own writer: its framing,
// and header values with their line breaks made spaces (the header fields
// themselves were validated by the server that read the client's request).
func (c *upConn) writeRequest(out *http.Request) error {
	bw := upWriters.Get().(*bufio.Writer)
	bw.Reset(c)
	var err error
	if !writeBodiless(bw, out) {
		err = out.Write(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	upWriters.Put(bw)
	return err
}

// writeBodiless writes out, which must have no body, and reports true;
// or writes nothing and reports false when out is not a bodiless
// request in origin form with an ASCII Host. It writes what
// (*http.Request).Write would, without its allocations: the request line
// with the client's own target, Host, the header fields (but the framing
// ones, and with line breaks in values made spaces), "Content-Length: 0"
// for the methods that expect a body.
func writeBodiless(bw *bufio.Writer, out *http.Request) bool {
	uri, host := out.RequestURI, out.Host
	if out.Body != nil || out.Close || uri == "" || uri[0] != '/' || host == "" || !isASCII(host) {
		return false
	}
	bw.WriteString(out.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vv := range out.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vv {
			h1.WriteField(bw, k, v)
		}
	}
	switch out.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
	return true
}

// isASCII reports whether s has only ASCII bytes (a Host net/http would
// send as is, without Punycode).
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// finish ends the current exchange: the connection goes back to the pool
// when ok and nothing asked for it to be closed, and is closed otherwise.
// It waits for the request body write, cutting it short if need be.
func (c *upConn) finish(ok bool) {
	if c.stop != nil && !c.stop() {
		// The client went away and the hook closed (or is closing) conn.
		ok = false
	}
	if c.wdone != nil {
		select {
		case err := <-c.wdone:
			if err != nil {
				ok = false
			}
		default:
			// The exchange ended before the request body was all sent:
			// the connection cannot be reused, and closing it unblocks a
			// write to the backend. A writer waiting for the client's next
			// bytes returns when they come, the client leaves or
			// ClientBodyTimeout passes (clientBody). When a response is
			// being relayed (c.body is set), the client gets it complete
			// first; otherwise nothing is flushed, since a flush before
			// the head is written would send a 200 OK the backend never
			// gave. A read deadline would unblock the writer sooner, but
			// a deadline that fires after the body's end would hit the
			// server's background read and cancel every later request of
			// the client connection.
			ok = false
			c.close()
			if c.body.rc != nil && !c.sent.reachedEnd.Load() {
				_ = http.NewResponseController(c.w).Flush()
			}
			<-c.wdone
		}
	}
	if ok && !c.closeAfter {
		c.b.put(c)
		return
	}
	c.close()
}

// upBody is an upstream response body; closing it releases its connection.
type upBody struct {
	rc io.ReadCloser
	c  *upConn
	// eof is set once rc returned io.EOF; failed once it returned another
	// error.
	eof, failed bool
	done        bool
}

func (b *upBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	} else if err != nil {
		b.failed = true
	}
	return n, err
}

// Close releases the connection: to the pool when the body was read to
// its end, closed otherwise.
func (b *upBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof || b.failed {
		// net/http's body would otherwise read the rest to reuse the
		// connection, which may be endless for a stream.
		b.c.close()
		b.c.finish(false)
		// The connection is closed: the body cannot block any more.
		_ = b.rc.Close()
		return nil
	}
	err := b.rc.Close()
	b.c.finish(err == nil)
	return nil
}

// sentBody is a request body being sent to a backend; it tells when the
// client's body has been read to its end.
type sentBody struct {
	rc         io.ReadCloser
	reachedEnd atomic.Bool
	// err is the error reading rc other than io.EOF; written and read by
	// the body's writer only.
	err error
}

func (b *sentBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		b.reachedEnd.Store(true)
		if err != io.EOF { //nolint:errorlint // io.Reader's contract
			b.err = err
		}
	}
	return n, err
}

func (b *sentBody) Close() error { return b.rc.Close() }
