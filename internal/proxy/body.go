package proxy

// Request bodies as read from the client: the time between two reads,
// and the client's own failures (a malformed chunk, a body cut short, a
// stall), which are answered 400 or 408 and never counted against a
// release.

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/h1"
)

// clientBody is a request body read from the client. Before each read it
// moves the client connection's read deadline to ClientBodyTimeout from
// now, so a client that stops sending is found out; it keeps the first
// error other than io.EOF, which is the client's fault whatever it is: a
// malformed chunk, a connection closed mid-body, a stall. It is read by
// one goroutine at a time; err is read by the handler's goroutine once
// the reader is done (after the upstream exchange ended, which waits for
// the body's writer).
type clientBody struct {
	rc  io.ReadCloser
	ctl *http.ResponseController
	// timeout is ClientBodyTimeout; 0 once the server turned out unable
	// to set read deadlines.
	timeout time.Duration
	// deadline is the read deadline set last.
	deadline time.Time
	// n counts the bytes read; more than limit (when > 0) is an error.
	n, limit int64
	eof      bool
	err      error
	// bad is set once err is; abandoned once the proxy closed the body
	// (abandon).
	bad, abandoned atomic.Bool
}

func newClientBody(w http.ResponseWriter, rc io.ReadCloser, timeout time.Duration, limit int64) *clientBody {
	return &clientBody{rc: rc, ctl: http.NewResponseController(w), timeout: timeout, limit: limit}
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.timeout > 0 {
		want := time.Now().Add(b.timeout)
		// Not moved for every read: a deadline at most timeout/16 early
		// stands (h1.KeepDeadline).
		if !h1.KeepDeadline(b.deadline, want, b.timeout) {
			if err := b.ctl.SetReadDeadline(want); err != nil {
				// A server without read deadlines: no timeout.
				b.timeout = 0
			} else {
				b.deadline = want
			}
		}
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.limit > 0 && b.n > b.limit {
		n -= int(b.n - b.limit)
		b.n = b.limit
		err = errBodyTooLarge
	}
	switch {
	case err == io.EOF: //nolint:errorlint // io.Reader's contract
		// The server's watch for the client leaving, armed at the body's
		// end, clears the deadline before it reads.
		b.eof = true
	case err != nil:
		b.err = err
		b.bad.Store(true)
	}
	return n, err
}

// Close closes the client's body; its error tells nothing the proxy can
// act on.
func (b *clientBody) Close() error { return b.rc.Close() }

// failed reports whether reading the body failed, by the client's fault.
// b may be nil (no body).
// An h2c transport may still be reading the body when the handler asks
// (the body of a stream whose answer came first): bad is set after err,
// so err may be read once failed is true. A body the proxy abandoned
// first has not failed by the client's fault, whatever its reads say.
func (b *clientBody) failed() bool { return b != nil && b.bad.Load() && !b.abandoned.Load() }

// abandon marks the body closed by the proxy itself, before closing it:
// an h2c transport ending its stream (the backend gone, the answer
// complete) closes the body its writer may be blocked reading, and what
// that read returns is no fault of the client's. A body that failed
// before stays failed.
func (b *clientBody) abandon() {
	if !b.bad.Load() {
		b.abandoned.Store(true)
	}
}

// clientBodyFailed answers a request whose body the client failed to
// send: 408 when it stalled for ClientBodyTimeout, 413 when it passed
// MaxRequestBody, 400 otherwise (a malformed chunk, a body cut short). The connection closes after the
// answer: where the next request would start is lost. Nothing is counted
// against a release.
func (p *Proxy) clientBodyFailed(w http.ResponseWriter, idv []string, err error) {
	status, msg := http.StatusBadRequest, "cutover: malformed or incomplete request body"
	switch {
	case errors.Is(err, errBodyTooLarge):
		status, msg = http.StatusRequestEntityTooLarge, "cutover: request body larger than "+
			strconv.FormatInt(p.opts.MaxRequestBody, 10)+" bytes (max_request_body)"
	case isTimeout(err):
		status, msg = http.StatusRequestTimeout, "cutover: request body not received: nothing came for "+
			p.opts.ClientBodyTimeout.String()+" (client_body_timeout)"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "cutover: request body cut short: the connection ended before its end"
	}
	p.log.Debug("client request body failed", "status", status, "err", err)
	w.Header()["Connection"] = valuesClose
	p.writeError(w, status, idv, msg+"\n")
}

var valuesClose = []string{"close"}
