package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// response is the http.ResponseWriter of a request. It also implements
// http.Flusher, http.Hijacker and the methods http.ResponseController
// looks for (FlushError, SetReadDeadline, SetWriteDeadline,
// EnableFullDuplex).
//
// Framing: a Content-Length the handler sets is used and enforced;
// without one the body is chunked (HTTP/1.1) or ends with the connection
// (HTTP/1.0). Unlike net/http, the status line and headers are buffered
// as soon as WriteHeader is called (they leave with the first flush), no
// Content-Type is guessed from the body, and no Content-Length is computed
// for a short body.
type response struct {
	c   *conn
	req *http.Request
	// header is the handler's header map, reused across the connection's
	// requests.
	header http.Header
	// bw buffers what goes to the client; taken from the pool when the
	// response starts, returned when it ends.
	bw *bufio.Writer

	status      int
	wroteHeader bool
	// cl is the declared Content-Length, -1 when none; written counts
	// the body bytes written.
	cl, written int64
	chunked     bool
	// noBody is set for answers that carry no body (HEAD, 1xx, 204, 304);
	// head for HEAD, whose body writes are discarded without error.
	noBody, head bool
	// closeAfter is set when the connection must close after the answer.
	closeAfter bool
	// trailers lists the trailer names the handler declared with Trailer.
	trailers []string
	// failed is set once a write to the client failed.
	failed bool

	// body wraps the request body; bodyDone is set once it was read to
	// its end (or there was none), bodyFailed when reading it failed. The
	// body may be read on another goroutine than the handler's.
	body       reqBody
	bodyDone   atomic.Bool
	bodyFailed atomic.Bool
	// expectContinue is set, before the handler runs, when the client
	// waits for 100 Continue; continueTried once the body was first read.
	expectContinue bool
	continueTried  atomic.Bool
	// continueMu orders 100 Continue with the final answer; it guards
	// continueSent, continueWriteError and, while expectContinue is set,
	// wroteHeader.
	continueMu         sync.Mutex
	continueSent       bool
	continueWriteError error
}

// reset prepares w for req.
func (w *response) reset(req *http.Request) {
	h := w.header
	if h == nil {
		h = make(http.Header)
	} else {
		clear(h)
	}
	*w = response{c: w.c, req: req, header: h, cl: -1, trailers: w.trailers[:0]}
	w.head = req.Method == http.MethodHead
	w.closeAfter = req.Close
}

func (w *response) Header() http.Header { return w.header }

// Shared header values.
var (
	valuesClose     = []string{"close"}
	valuesKeepAlive = []string{"keep-alive"}
)

// WriteHeader writes the status line and headers into the buffer. A 1xx
// status other than 101 is sent at once and may be followed by others.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.wroteHeader || w.failed || w.c.hijacked {
		return
	}
	if w.expectContinue {
		w.continueMu.Lock()
		defer w.continueMu.Unlock()
	}
	if w.bw == nil {
		w.bw = writers.Get().(*bufio.Writer)
		w.bw.Reset(w.c.wr)
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInterim(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	h := w.header
	req := w.req
	http11 := req.ProtoAtLeast(1, 1)

	w.noBody = w.head || code == http.StatusNoContent || code == http.StatusNotModified || code < 200
	if v := h["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseUint(v[0], 10, 63); err == nil && len(v) == 1 && code != http.StatusNoContent && code >= 200 {
			w.cl = int64(n)
		} else {
			delete(h, "Content-Length")
		}
	}
	if tv := h["Trailer"]; len(tv) > 0 {
		for _, v := range tv {
			for _, k := range strings.Split(v, ",") {
				if k = textproto.TrimString(k); k != "" {
					w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
				}
			}
		}
	}
	if w.expectContinue && !w.continueSent && !w.bodyDone.Load() {
		// The client may still send the body or not: the connection is in
		// an unknown state after this answer.
		w.closeAfter = true
	}
	if w.c.s.inShutdown.Load() {
		w.closeAfter = true
	}
	if cv := h["Connection"]; len(cv) > 0 && httpguts.HeaderValuesContainsToken(cv, "close") {
		w.closeAfter = true
	}
	keepAlive10 := false
	switch {
	case w.noBody || w.cl >= 0:
	case http11:
		w.chunked = true
	default:
		// HTTP/1.0 has no chunking: the end of the connection ends the body.
		w.closeAfter = true
	}
	if !http11 && !w.closeAfter && httpguts.HeaderValuesContainsToken(req.Header["Connection"], "keep-alive") {
		keepAlive10 = true
	} else if !http11 {
		w.closeAfter = true
	}

	bw := w.bw
	if http11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	bw.WriteString(itoa3(code))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	writeHeaderLines(bw, h, code)
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(HTTPDate())
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter && !httpguts.HeaderValuesContainsToken(h["Connection"], "close") && (http11 || keepAlive10) {
		bw.WriteString("Connection: close\r\n")
	} else if keepAlive10 {
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

// writeInterim sends a 1xx answer with the current headers at once.
func (w *response) writeInterim(code int) {
	bw := w.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(itoa3(code))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	writeHeaderLines(bw, w.header, code)
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		w.failed = true
	}
	if code == http.StatusContinue {
		w.continueSent = true
	}
}

// writeHeaderLines writes h's fields but those the server decides on
// (Transfer-Encoding, and Content-Length where no body may be) and the
// trailers: names that are not valid field names are left out, line breaks
// in values become spaces, as net/http does.
func writeHeaderLines(bw *bufio.Writer, h http.Header, code int) {
	for k, vv := range h {
		switch k {
		case "Transfer-Encoding":
			continue
		case "Content-Length":
			if code < 200 || code == http.StatusNoContent {
				continue
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			WriteField(bw, k, v)
		}
	}
}

// WriteField writes the header or trailer field "name: value\r\n" as
// net/http writes one: line breaks in the value made spaces, surrounding
// blanks trimmed. The name must be a valid field name. The proxy's
// upstream request writer uses it too.
func WriteField(bw *bufio.Writer, name, value string) {
	bw.WriteString(name)
	bw.WriteString(": ")
	v := textproto.TrimString(value)
	for {
		i := strings.IndexAny(v, "\r\n")
		if i < 0 {
			bw.WriteString(v)
			break
		}
		bw.WriteString(v[:i])
		bw.WriteByte(' ')
		v = v[i+1:]
	}
	bw.WriteString("\r\n")
}

// itoa3 formats a status code.
func itoa3(code int) string {
	if code >= 100 && code <= 999 {
		i := (code - 100) * 3
		return statusCodes[i : i+3]
	}
	return strconv.Itoa(code)
}

// statusCodes holds "100101102…999", so that formatting a status code
// takes no allocation.
var statusCodes = func() string {
	var b strings.Builder
	for i := 100; i < 1000; i++ {
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}()

// Write writes body bytes, after a 200 header when none was written.
func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, errWriteFailed
	}
	if w.noBody {
		if w.head {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	bw := w.bw
	if w.chunked {
		// The chunk size is formatted into the writer's own free space
		// (a local array would escape to the heap through Write).
		b := strconv.AppendUint(bw.AvailableBuffer(), uint64(len(p)), 16)
		b = append(b, '\r', '\n')
		bw.Write(b)
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return w.wrote(len(p), err)
	}
	n, err := bw.Write(p)
	return w.wrote(n, err)
}

func (w *response) WriteString(s string) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if w.wroteHeader && !w.chunked && !w.noBody && !w.failed && (w.cl < 0 || w.written+int64(len(s)) <= w.cl) {
		w.written += int64(len(s))
		n, err := w.bw.WriteString(s)
		return w.wrote(n, err)
	}
	return w.Write([]byte(s))
}

var errWriteFailed = errors.New("h1: an earlier write to the client failed")

// wrote records the outcome of a write to the buffer.
func (w *response) wrote(n int, err error) (int, error) {
	if err != nil {
		w.failed = true
	}
	return n, err
}

// Flush sends what is buffered, the headers first.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting the error; http.ResponseController uses it.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return errWriteFailed
	}
	_, err := w.wrote(0, w.bw.Flush())
	return err
}

// Hijack hands the connection over to the handler, with what the server
// read ahead and what it buffered but did not send yet.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c.disarm()
	if w.bw == nil {
		w.bw = writers.Get().(*bufio.Writer)
		w.bw.Reset(c.wr)
	} else if err := w.bw.Flush(); err != nil {
		return nil, nil, err
	}
	c.hijacked = true
	// As with net/http, the handler gets a connection without a read
	// deadline.
	_ = c.rwc.SetReadDeadline(time.Time{})
	// The reader keeps what the server read ahead of the handler.
	rw := bufio.NewReadWriter(c.br, w.bw)
	c.br = nil
	w.bw = nil
	c.s.remove(c)
	c.setState(http.StateHijacked)
	return c.rwc, rw, nil
}

func (w *response) SetReadDeadline(t time.Time) error {
	w.c.rdlKnown = false
	return w.c.rwc.SetReadDeadline(t)
}
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex reports success: the server always lets a handler read
// the request body while it writes the response.
func (w *response) EnableFullDuplex() error { return nil }

// writeContinue sends 100 Continue before the body is first read, unless
// the final answer started already.
func (w *response) writeContinue() {
	w.continueMu.Lock()
	defer w.continueMu.Unlock()
	if w.wroteHeader || w.continueSent {
		return
	}
	w.continueSent = true
	_ = w.c.rwc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(w.c.rwc, "HTTP/1.1 100 Continue\r\n\r\n")
	_ = w.c.rwc.SetWriteDeadline(time.Time{})
	w.continueWriteError = err
}

// finish completes the response after the handler returned: the headers
// if none were written, the last chunk and the trailers, the flush; then
// what the handler left of the request body is read, when little enough.
// It reports whether the connection can serve another request.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.continueMu.Lock()
	ok := !w.failed && w.continueWriteError == nil
	w.continueMu.Unlock()
	if ok && w.chunked {
		w.writeTrailers()
	}
	if w.cl >= 0 && w.written != w.cl && !w.noBody {
		// A body shorter than announced: the client learns it from the
		// connection closing.
		ok = false
	}
	if !w.release(!w.failed) {
		ok = false
	}
	if !ok || w.closeAfter {
		if !w.bodyDone.Load() {
			w.c.closeWriteAndWait()
		}
		return false
	}
	if !w.bodyDone.Load() {
		if w.bodyFailed.Load() {
			return false
		}
		// Read what is left of the body, if it is not too much, so the
		// next request can be read.
		n, err := io.CopyN(discard, w.body.rc, maxPostHandlerReadBytes+1)
		if err != io.EOF || n > maxPostHandlerReadBytes { //nolint:errorlint // CopyN returns it as is
			w.c.closeWriteAndWait()
			return false
		}
	}
	return true
}

// writeTrailers ends a chunked body: the last chunk, then the trailers
// the handler declared and those it set with http.TrailerPrefix.
func (w *response) writeTrailers() {
	bw := w.bw
	bw.WriteString("0\r\n")
	h := w.header
	for _, k := range w.trailers {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range h[k] {
			WriteField(bw, k, v)
		}
	}
	for k, vv := range h {
		name, ok := strings.CutPrefix(k, http.TrailerPrefix)
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			continue
		}
		for _, v := range vv {
			WriteField(bw, name, v)
		}
	}
	_, err := bw.WriteString("\r\n")
	w.wrote(0, err)
}

// release flushes what is buffered when flush is set, and returns the
// write buffer to the pool. It reports whether the flush succeeded.
func (w *response) release(flush bool) bool {
	bw := w.bw
	if bw == nil {
		return true
	}
	w.bw = nil
	ok := true
	if flush && bw.Buffered() > 0 {
		ok = bw.Flush() == nil
	}
	bw.Reset(nil)
	writers.Put(bw)
	return ok
}

// The Date header's value, formatted once a second.
var dateCache atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	s   string
}

// HTTPDate returns the current time in the Date header's format,
// formatted at most once a second (package h2 uses it too).
func HTTPDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &dateValue{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}
