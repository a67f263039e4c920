package proxy

// The fast path for upstream response heads.
//
// Nearly every backend answers in one simple form: "HTTP/1.1", a final
// status with a body, strict header fields, a single Content-Length and no
// Transfer-Encoding, the whole head in one read. readSimpleResponse reads
// that form without net/http's allocations (the textproto reader, the
// Response, the body wrapper, the LimitedReader, the status and proto
// strings) and fills a Response exactly as http.ReadResponse would; it
// leaves everything else untouched for http.ReadResponse, which then
// decides. The differential tests and the fuzz test (readhead_test.go)
// check that whatever the fast path accepts, net/http reads the same way.

import (
	"bufio"
	"bytes"
	"io"
	"net/http"

	"golang.org/x/net/http/httpguts"

	"github.com/cutover/cutover/internal/h1"
)

// simpleProto is the only protocol version the fast path reads; its
// status line starts with simpleProto and a space.
const simpleProto = "HTTP/1.1"

// maxSimpleLengthDigits bounds the digits of a Content-Length the fast
// path reads, so that the value always fits an int64 (net/http reads up to
// 1<<63-1, which a longer value may exceed).
const maxSimpleLengthDigits = 18

// headEnd ends a response head: the CRLF of its last line, then the empty
// line.
var headEnd = []byte("\r\n\r\n")

// fixedBody is a response body of known length, read from the
// connection's bufio.Reader. It replaces net/http's body over an
// io.LimitedReader, with the same results for each Read, so that a
// response read by readSimpleResponse costs no allocation for its body.
type fixedBody struct {
	br     *bufio.Reader
	remain int64
}

// Read reads the body as net/http's body for a Content-Length does: never
// more than the bytes that remain, io.EOF along with the last ones, and
// io.ErrUnexpectedEOF (unwrapped, as net/http returns it and callers
// compare it) when the connection ends before them, then io.EOF. After
// Close it returns http.ErrBodyReadAfterClose, as net/http's body does.
func (b *fixedBody) Read(p []byte) (int, error) {
	if b.br == nil {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.br.Read(p)
	b.remain -= int64(n)
	switch {
	case err == io.EOF && b.remain > 0:
		// The connection ended early; the body reads as ended after this.
		b.remain = 0
		return n, io.ErrUnexpectedEOF
	case err == nil && n > 0 && b.remain == 0:
		return n, io.EOF
	}
	return n, err
}

// Close forgets the reader and returns nil. Unlike net/http's body it
// does not read the rest of the body: the proxy's upstream body wrapper
// closes a connection whose body was not read to its end instead.
func (b *fixedBody) Close() error {
	b.br = nil
	return nil
}

// readSimpleResponse reads the next response from br when its whole head
// is already in br's buffer and in the simple form (see below): it fills
// *resp as http.ReadResponse(br, req) would, with h (which must be empty)
// as its header and body as its body (or http.NoBody for a Content-Length
// of 0), consumes the head from br and reports true. Otherwise it
// consumes nothing from br, leaves resp and body alone, h empty, and
// reports false; the caller then calls http.ReadResponse, which decides.
// It never reads from br's underlying reader.
//
// The simple form: the status line "HTTP/1.1 " with a status in 200..599
// other than 204 and 304, and an optional reason of visible ASCII, spaces
// and tabs; header fields in h1.ParseFieldsInto's strict form; exactly one
// Content-Length of 1 to 18 digits; no Transfer-Encoding; every line
// ending in CRLF; and a request (nil reads as GET) other than HEAD.
func readSimpleResponse(br *bufio.Reader, req *http.Request, resp *http.Response, h http.Header, body *fixedBody) bool {
	if req != nil && req.Method == http.MethodHead {
		return false // no body whatever the framing: net/http's case
	}
	// Peek of what is buffered never reads from the connection.
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, headEnd)
	if end < 0 {
		return false
	}
	lineEnd, code, ok := parseSimpleStatusLine(buf[:end+2])
	if !ok {
		return false
	}
	// One string for the whole head: the status and every field value are
	// substrings of it.
	head := string(buf[:end+2])
	length, ok := int64(0), h1.ParseFieldsInto(h, head[lineEnd+2:])
	if ok {
		length, ok = simpleContentLength(h)
	}
	if !ok {
		clear(h)
		return false
	}
	h1.FixPragmaCacheControl(h)
	*resp = http.Response{
		Status:     head[len(simpleProto)+1 : lineEnd],
		StatusCode: code,
		Proto:      simpleProto,
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		// Only the close token counts for HTTP/1.1; net/http then drops
		// the Connection field.
		Close:         removeConnectionClose(h),
		ContentLength: length,
		Request:       req,
	}
	if length > 0 {
		*body = fixedBody{br: br, remain: length}
		resp.Body = body
	}
	// Discard of buffered bytes cannot fail.
	_, _ = br.Discard(end + len(headEnd))
	return true
}

// parseSimpleStatusLine parses the status line at the start of head (the
// head without its empty line) when it is "HTTP/1.1 ", three digits of a
// status in 200..599 other than 204 and 304, then CRLF or a space, a
// reason of visible ASCII, spaces and tabs, and CRLF. It returns the
// index of the line's CRLF and the status code.
func parseSimpleStatusLine(head []byte) (lineEnd, code int, ok bool) {
	const codeAt = len(simpleProto) + 1
	if len(head) < codeAt+5 || string(head[:codeAt]) != simpleProto+" " {
		return 0, 0, false
	}
	for _, c := range head[codeAt : codeAt+3] {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		code = code*10 + int(c-'0')
	}
	// 1xx, 204 and 304 have no body and 600 and above are not statuses:
	// net/http's cases.
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified {
		return 0, 0, false
	}
	i := codeAt + 3
	if head[i] == ' ' {
		i++
		for i < len(head) && h1.IsTextByte(head[i]) {
			i++
		}
	}
	if i+1 >= len(head) || head[i] != '\r' || head[i+1] != '\n' {
		return 0, 0, false
	}
	return i, code, true
}

// simpleContentLength returns the body length of a response with header
// h when h has exactly one Content-Length field, of 1 to 18 digits, and no
// Transfer-Encoding field. Other framings (several lengths, even equal,
// chunked or invalid encodings, signs, blanks inside) are net/http's.
func simpleContentLength(h http.Header) (int64, bool) {
	if _, ok := h["Transfer-Encoding"]; ok {
		return 0, false
	}
	cl := h["Content-Length"]
	if len(cl) != 1 {
		return 0, false
	}
	v := cl[0]
	if len(v) == 0 || len(v) > maxSimpleLengthDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// removeConnectionClose reports whether the Connection field of an
// HTTP/1.1 response asks to close the connection and then deletes the
// field, as net/http's shouldClose does for a response.
func removeConnectionClose(h http.Header) bool {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
		return false
	}
	delete(h, "Connection")
	return true
}
