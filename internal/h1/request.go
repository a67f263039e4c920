package h1

// Reading a request: the bound on its headers, net/http's parser and the
// checks net/http's server adds, and the refusal of what cannot be read.

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
	"time"

	"golang.org/x/net/http/httpguts"
)

// limitReader reads from the connection within the bounds on a request's
// head that limitHead armed: at most remain bytes, then io.EOF; and while
// lineLeft > 0, the request line's end within lineLeft bytes, else
// lineTooLong is set and it returns io.EOF at once. Once the head is read,
// remain is math.MaxInt64 and lineLeft 0: a body is not bounded here.
type limitReader struct {
	rd     io.Reader
	remain int64
	// lineLeft is how many more bytes the request line may take, its LF
	// included, while its end has not been read; 0 = not watched.
	lineLeft    int
	lineTooLong bool
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
	if l.lineLeft > 0 && n > 0 {
		i := bytes.IndexByte(p[:n], '\n')
		switch {
		case i >= 0 && i < l.lineLeft:
			l.lineLeft = 0 // the line ends within its bound
		case i < 0 && n < l.lineLeft:
			l.lineLeft -= n
		default:
			// The line is longer than its bound: what was read is
			// dropped, the request is refused.
			l.lineTooLong, l.lineLeft, l.remain = true, 0, 0
			return 0, io.EOF
		}
	}
	return n, err
}

// lift ends the bounds of a request's head.
func (l *limitReader) lift() {
	l.remain, l.lineLeft = math.MaxInt64, 0
}

// headerBuffered reports whether br holds the end of a request's header
// block already, so reading the headers cannot wait on the client.
func headerBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, crlfcrlf)
}

var crlfcrlf = []byte("\r\n\r\n")

// readRequest reads the next request's line and headers: a simple
// bodiless one with parseSimpleRequest, any other with net/http's parser
// (its body framing, header validation and smuggling checks), then the
// checks net/http's server adds. mustClose tells that the connection must
// close after the answer. The request returned may be the connection's
// own, valid until the next call, with the connection's header map:
// handle hands the handler a copy of the request.
func (c *conn) readRequest() (req *http.Request, mustClose bool, err error) {
	if c.lastMethod == http.MethodPost {
		// RFC 9112 section 2.2: tolerate a CRLF some old clients send after
		// a POST body.
		peek, _ := c.br.Peek(4)
		_, _ = c.br.Discard(leadingCRLF(peek))
	}
	buffered, _ := c.br.Peek(c.br.Buffered())
	if c.hdr == nil {
		c.hdr = make(http.Header)
	} else {
		clear(c.hdr)
	}
	if n, ok := parseSimpleRequest(buffered, &c.simple, c.hdr, &c.url); ok && !c.s.slowOnly {
		// The common case; see simple.go. A head in the buffer is within
		// bounds of at least the buffer's size.
		if c.s.maxRequestLineBytes() < bufSize || c.s.maxHeaderBytes() < bufSize {
			if err := c.s.checkHead(buffered, n); err != nil {
				return nil, false, err
			}
		}
		_, _ = c.br.Discard(n)
		c.lastMethod = c.simple.Method
		c.simple.RemoteAddr = c.remoteAddr
		c.simple.TLS = c.tls
		return &c.simple, false, nil
	}
	// What http.ReadRequest does not keep (it drops the Host header and,
	// beside chunked, Content-Length) is read from the raw header block
	// when it is all in the buffer, as nearly always.
	head, scanned := scanHead(buffered)
	if err := c.limitHead(buffered, head, scanned); err != nil {
		return nil, false, err
	}
	req, err = http.ReadRequest(c.br)
	if err != nil {
		switch {
		case c.r.lineTooLong:
			c.r.lineTooLong = false
			return nil, false, c.s.errLineTooLong()
		case c.r.remain <= 0:
			return nil, false, errHeaderTooLarge
		}
		return nil, false, err
	}
	c.r.lift()
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
	if req.Host == "" {
		// HTTP/1.0 without a Host (or an empty one): the handler sees
		// the address the client connected to, the server's own, as
		// nginx gives $host its server name; never nothing, which a
		// proxy would fill with its backend's address.
		req.Host = c.localHost()
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
	req.TLS = c.tls
	return req, mustClose, nil
}

// checkHead checks the head of n bytes at the start of b against the
// server's bounds.
func (s *Server) checkHead(b []byte, n int) error {
	if bytes.IndexByte(b[:n], '\n') >= s.maxRequestLineBytes() {
		return s.errLineTooLong()
	}
	if n > s.maxHeaderBytes() {
		return errHeaderTooLarge
	}
	return nil
}

// limitHead applies the server's bounds to the head of the next request,
// of which b is what the buffer holds (head and scanned are scanHead's
// reading of it): a request line or head that b holds whole is checked at
// once, one that goes on past b is bounded by c.r as it is read.
func (c *conn) limitHead(b []byte, head rawHead, scanned bool) error {
	maxLine, maxHead := c.s.maxRequestLineBytes(), c.s.maxHeaderBytes()
	c.r.lift()
	c.r.lineTooLong = false
	if i := bytes.IndexByte(b, '\n'); i >= maxLine || i < 0 && len(b) >= maxLine {
		return c.s.errLineTooLong()
	} else if i < 0 {
		c.r.lineLeft = maxLine - len(b)
	}
	switch {
	case scanned && head.size > maxHead, !scanned && len(b) >= maxHead:
		return errHeaderTooLarge
	case !scanned:
		c.r.remain = int64(maxHead - len(b))
	}
	return nil
}

// errLineTooLong is the refusal of a request line past the server's
// bound.
func (s *Server) errLineTooLong() error {
	return statusError{http.StatusRequestURITooLong, "request line over " + strconv.Itoa(s.maxRequestLineBytes()) + " bytes"}
}

// localHost returns the connection's local address as a Host value, ""
// when it cannot be one.
func (c *conn) localHost() string {
	a := c.rwc.LocalAddr()
	if a == nil {
		return ""
	}
	h := a.String()
	if !httpguts.ValidHostHeader(h) {
		return ""
	}
	return h
}

// rawHead is what scanHead read from a raw header block.
type rawHead struct {
	// size is the length of the head, the empty line that ends it
	// included.
	size int
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
	all := len(b)
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
			h.size = all - len(b)
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
