package h2

import (
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/h1"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// bodyBufSize is how much of a response's body is held before it is
// sent: a response this small that the handler finishes goes out in one
// write with its headers.
const bodyBufSize = 4 << 10

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, bodyBufSize); return &b }}

// responseWriter is a stream's http.ResponseWriter. Its fields are the
// handler's, except sentHeader, which is written under the connection's
// wmu and read there by others.
type responseWriter struct {
	s           *stream
	hdr         http.Header
	status      int
	wroteHeader bool // the status is set (WriteHeader, or the first Write)
	sentHeader  bool // the HEADERS frame is written
	endSent     bool // END_STREAM is written
	bodyOK      bool // the status and method allow a body
	head        bool // the request is HEAD
	failed      error
	declared    int64 // Content-Length set by the handler, -1 for none
	autoLength  bool  // declared was set by finish: sent as Content-Length
	written     int64
	trailers    []string    // declared with the Trailer header
	snap        http.Header // the header map as WriteHeader saw it; nil: hdr
	buf         *[]byte
}

func (w *responseWriter) Header() http.Header {
	if w.hdr == nil {
		w.hdr = make(http.Header, 8)
	}
	return w.hdr
}

// WriteHeader sets the status. An explicit call takes a copy of the
// header map, so that later changes to it are not sent, as with
// net/http; the headers go out with the first body bytes, a Flush or the
// handler's end — so that a response without a body is one HEADERS frame
// that ends the stream (a gRPC "trailers-only" answer must be). 1xx
// headers are sent at once.
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader {
		return
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			w.writeInformational(code, w.hdr)
		}
		return
	}
	w.setStatus(code)
	if w.bodyOK {
		w.snap = maps.Clone(w.hdr)
		return
	}
	// No body can follow: the headers end the stream, unless trailers
	// were declared.
	_ = w.sendHeaders(len(w.trailers) == 0, true)
}

// setStatus records the status and what it implies.
func (w *responseWriter) setStatus(code int) {
	w.wroteHeader = true
	w.status = code
	w.head = w.s.req.Method == http.MethodHead
	w.bodyOK = !w.head && code != http.StatusNoContent && code != http.StatusNotModified
	w.declared = -1
	if cl := w.hdr.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
	for _, v := range w.hdr["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			if k = textproto.TrimString(k); k != "" {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
			}
		}
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	return w.write(len(p), p, "")
}

func (w *responseWriter) WriteString(s string) (int, error) {
	return w.write(len(s), nil, s)
}

func (w *responseWriter) write(n int, p []byte, s string) (int, error) {
	if !w.wroteHeader {
		w.setStatus(http.StatusOK)
	}
	if !w.bodyOK {
		if w.head {
			return n, nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.failed != nil {
		return 0, w.failed
	}
	if w.declared >= 0 && w.written+int64(n) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(n)
	if w.buf == nil {
		w.buf = bodyBufs.Get().(*[]byte)
	}
	b := *w.buf
	if len(b)+n <= cap(b) {
		if p != nil {
			b = append(b, p...)
		} else {
			b = append(b, s...)
		}
		*w.buf = b
		return n, nil
	}
	// Send what is held, then p itself if it is large.
	if err := w.sendData(b, false, false); err != nil {
		return 0, err
	}
	b = b[:0]
	*w.buf = b
	if n <= cap(b) {
		if p != nil {
			b = append(b, p...)
		} else {
			b = append(b, s...)
		}
		*w.buf = b
		return n, nil
	}
	if p == nil {
		p = []byte(s)
	}
	if err := w.sendData(p, false, false); err != nil {
		return 0, err
	}
	return n, nil
}

// Flush sends the headers and the body written so far.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting the write's error (http.ResponseController).
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.setStatus(http.StatusOK)
	}
	if w.failed != nil {
		return w.failed
	}
	var b []byte
	if w.buf != nil {
		b = *w.buf
		*w.buf = b[:0]
	}
	if w.endSent {
		return nil
	}
	return w.sendData(b, false, true)
}

// EnableFullDuplex is http.ResponseController's: an HTTP/2 handler may
// always read the body while it writes.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// SetReadDeadline is http.ResponseController's: a read of the request
// body blocked past t fails with os.ErrDeadlineExceeded (the stream goes
// on; zero clears it).
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	w.s.setDeadline(t, false)
	return nil
}

// SetWriteDeadline is http.ResponseController's: a write waiting for the
// client's flow-control window past t fails with os.ErrDeadlineExceeded,
// and so does every write after it (zero clears it). A write the
// connection's socket holds up is bounded by the connection, not by it.
func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	w.s.setDeadline(t, true)
	return nil
}

// finish ends the response once the handler returned: headers if not
// sent yet, what is held of the body, trailers, END_STREAM.
func (w *responseWriter) finish() {
	s := w.s
	defer s.endBody()
	defer w.release()
	if !w.wroteHeader {
		w.setStatus(http.StatusOK)
	}
	if w.failed != nil || w.endSent {
		w.closeStream()
		return
	}
	var b []byte
	if w.buf != nil {
		b = *w.buf
	}
	if !w.sentHeader && w.bodyOK && w.declared < 0 {
		// The whole body is known: say its length.
		w.declared = int64(len(b))
		w.autoLength = true
	}
	if err := w.sendData(b, true, true); err != nil {
		w.closeStream()
		return
	}
	if w.bodyOK && w.declared >= 0 && w.written < w.declared {
		// Less than announced: the client must see the body cut short.
		s.c.resetStream(s.id, http2.ErrCodeInternal, true)
		return
	}
	w.closeStream()
}

// closeStream takes the finished stream out of the connection; a client
// still sending its body is told to stop (RST_STREAM NO_ERROR, RFC 9113
// section 8.1).
func (w *responseWriter) closeStream() {
	s := w.s
	c := s.c
	c.mu.Lock()
	if s.closed {
		c.mu.Unlock()
		return
	}
	stop := !s.remoteDone && w.endSent
	s.closeLocked(nil, true)
	c.mu.Unlock()
	if stop {
		c.wmu.Lock()
		_ = c.fr.WriteRSTStream(s.id, http2.ErrCodeNo)
		_ = c.bw.Flush()
		c.wmu.Unlock()
	}
}

func (w *responseWriter) release() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		bodyBufs.Put(w.buf)
		w.buf = nil
	}
}

// trailerFields returns the trailers to send: the declared names that
// have values, and those set with http.TrailerPrefix.
func (w *responseWriter) trailerFields() http.Header {
	var t http.Header
	for _, k := range w.trailers {
		if v := w.hdr[k]; len(v) > 0 {
			if t == nil {
				t = make(http.Header)
			}
			t[k] = v
		}
	}
	for k, v := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && len(v) > 0 {
			if t == nil {
				t = make(http.Header)
			}
			t[http.CanonicalHeaderKey(name)] = v
		}
	}
	return t
}

// reserve waits until the stream may send DATA and takes up to n bytes
// (and one frame's worth at most) of its window and the connection's.
// It flushes what is pending before it waits, as the client gives
// window back only for what it received.
func (w *responseWriter) reserve(n int) (int, error) {
	s := w.s
	c := s.c
	flushed := false
	c.mu.Lock()
	for {
		if s.closed {
			err := s.err
			c.mu.Unlock()
			if err == nil {
				err = errStreamClosed
			}
			return 0, err
		}
		if win := min(c.sendWin, s.sendWin); win > 0 {
			k := min(int64(n), win, int64(c.maxFrame.Load()))
			c.sendWin -= k
			s.sendWin -= k
			c.mu.Unlock()
			return int(k), nil
		}
		if !flushed {
			c.mu.Unlock()
			c.wmu.Lock()
			_ = c.bw.Flush()
			c.wmu.Unlock()
			flushed = true
			c.mu.Lock()
			continue
		}
		if pastLocked(s.writeDeadline) {
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		c.cond.Wait()
	}
}

// sendData writes p as DATA, within the windows (waiting for them); end
// ends the stream after it (with the trailers, if any); flush flushes
// the connection's buffer at the end. The headers go first if they were
// not sent yet.
func (w *responseWriter) sendData(p []byte, end, flush bool) error {
	s := w.s
	c := s.c
	var trailers http.Header
	if end {
		trailers = w.trailerFields()
	}
	if !w.bodyOK {
		p = nil
	}
	for {
		k := 0
		if len(p) > 0 {
			var err error
			if k, err = w.reserve(len(p)); err != nil {
				w.failed = err
				return err
			}
		} else if end || !w.sentHeader {
			c.mu.Lock()
			closed, err := s.closed, s.err
			c.mu.Unlock()
			if closed {
				if err == nil {
					err = errStreamClosed
				}
				w.failed = err
				return err
			}
		}
		last := k == len(p)
		c.wmu.Lock()
		var err error
		if !w.sentHeader {
			endInHeaders := last && end && len(p) == 0 && trailers == nil
			err = w.encodeHeadersLocked(endInHeaders)
		}
		if err == nil && !w.endSent && (k > 0 || last && end) {
			endHere := last && end && trailers == nil
			err = c.fr.WriteData(s.id, endHere, p[:k])
			w.setEnded(endHere)
		}
		if err == nil && last && end && !w.endSent {
			err = w.encodeFieldsLocked(0, trailers, true)
			w.setEnded(true)
		}
		if err == nil && last && flush {
			err = c.bw.Flush()
			c.pending = false
		}
		c.wmu.Unlock()
		if err != nil {
			w.failed = err
			return err
		}
		p = p[k:]
		if last {
			return nil
		}
	}
}

// sendHeaders sends the HEADERS frame now (buffered unless flush).
func (w *responseWriter) sendHeaders(end, flush bool) error {
	c := w.s.c
	c.wmu.Lock()
	err := w.encodeHeadersLocked(end)
	if err == nil && flush {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		w.failed = err
	}
	return err
}

// writeInformational sends a 1xx response's headers at once, unless the
// final headers are out.
func (w *responseWriter) writeInformational(code int, h http.Header) {
	c := w.s.c
	c.wmu.Lock()
	if !w.sentHeader {
		_ = w.encodeFieldsLocked(code, h, false)
		_ = c.bw.Flush()
	}
	c.wmu.Unlock()
}

// encodeHeadersLocked writes the response's HEADERS frame. Called with
// wmu held.
func (w *responseWriter) encodeHeadersLocked(end bool) error {
	w.sentHeader = true
	w.setEnded(end)
	h := w.hdr
	if w.snap != nil {
		h = w.snap
	}
	return w.encodeFieldsLocked(w.status, h, end)
}

// setEnded records that END_STREAM is written, when end.
func (w *responseWriter) setEnded(end bool) {
	if end {
		w.endSent = true
		w.s.ended.Store(true)
	}
}

// statuses are the :status values, formatted once.
var statuses = func() (s [1000]string) {
	for i := 100; i < len(s); i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// encodeFieldsLocked encodes a header block — a response's headers with
// status, or trailers with status 0 — and writes it as HEADERS and
// CONTINUATION frames. Called with wmu held.
func (w *responseWriter) encodeFieldsLocked(status int, h http.Header, end bool) error {
	c := w.s.c
	c.hbuf.Reset()
	enc := c.henc
	if status != 0 {
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: statuses[status]})
	}
	final := status >= 200
	for k, vv := range h {
		if final && (strings.HasPrefix(k, http.TrailerPrefix) || w.isTrailer(k)) {
			continue
		}
		name := lowerKey(k)
		if !httpguts.ValidHeaderFieldName(name) || connSpecific(name) {
			continue
		}
		isTE := name == "te"
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) || isTE && v != "trailers" {
				continue
			}
			// A request ID differs on every response: indexing it would
			// only evict what is worth keeping.
			_ = enc.WriteField(hpack.HeaderField{Name: name, Value: v, Sensitive: name == "x-request-id"})
		}
	}
	if final {
		if _, ok := h["Date"]; !ok {
			_ = enc.WriteField(hpack.HeaderField{Name: "date", Value: h1.HTTPDate()})
		}
		if w.autoLength {
			_ = enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.FormatInt(w.declared, 10)})
		}
	}
	block := c.hbuf.Bytes()
	max := int(c.maxFrame.Load())
	first := block
	if len(first) > max {
		first = first[:max]
	}
	block = block[len(first):]
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID:      w.s.id,
		BlockFragment: first,
		EndStream:     end,
		EndHeaders:    len(block) == 0,
	})
	for err == nil && len(block) > 0 {
		frag := block
		if len(frag) > max {
			frag = frag[:max]
		}
		block = block[len(frag):]
		err = c.fr.WriteContinuation(w.s.id, len(block) == 0, frag)
	}
	return err
}

func (w *responseWriter) isTrailer(k string) bool {
	for _, t := range w.trailers {
		if t == k {
			return true
		}
	}
	return false
}
