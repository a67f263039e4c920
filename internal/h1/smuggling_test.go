package h1

import (
	"strings"
	"testing"
)

// withSmuggled appends a complete request for /smuggled to raw: it must
// never reach the handler.
func withSmuggled(raw string) string {
	return raw + "GET " + smuggled + " HTTP/1.1\r\nHost: x\r\n\r\n"
}

// refused is a case of bytes h1 must refuse with status, closing the
// connection, with the handler called calls times (0, or 1 when the
// request is taken and only its body is bad).
func refused(name, raw string, status, calls int) diffCase {
	return diffCase{name: name, steps: one(withSmuggled(raw), methodOf(raw)), want: []int{status}, open: false, calls: calls}
}

func methodOf(raw string) string {
	m, _, _ := strings.Cut(raw, " ")
	return m
}

const maxHeaderBytesForTests = 1024

// smugglingCases are malformed or ambiguous requests: each is refused, the
// connection is closed, and the request appended after it (for /smuggled)
// never reaches the handler.
var smugglingCases = []diffCase{
	{
		// RFC 9112 6.1: a server MAY process such a request by its
		// Transfer-Encoding alone, but MUST close the connection after
		// responding. Here the Content-Length interpretation hides
		// /smuggled inside the body; the chunked one ends the body before
		// it, making it a second request on the connection.
		name: "Content-Length and Transfer-Encoding: chunked together",
		steps: one("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 42\r\nTransfer-Encoding: chunked\r\n\r\n"+
			withSmuggled("0\r\n\r\n"), "POST"),
		want: []int{200}, open: false, calls: 1, allow: allowStricter,
		check: wantCall(0, `POST /a HTTP/1.1 body=""`),
	},
	refused("two different Content-Length values", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, 0),
	refused("two different Content-Length values in one header", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", 400, 0),
	refused("Content-Length with a plus sign", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400, 0),
	refused("Content-Length with a minus sign", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello", 400, 0),
	refused("Content-Length with a space inside", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\nhelloworld", 400, 0),
	refused("Content-Length in hexadecimal", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", 400, 0),
	refused("empty Content-Length", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400, 0),
	refused("Transfer-Encoding: gzip", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, 0),
	refused("Transfer-Encoding: chunked, gzip", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 501, 0),
	refused("Transfer-Encoding: gzip, chunked", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, 0),
	refused("Transfer-Encoding: xchunked", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501, 0),
	refused("Transfer-Encoding: identity", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n", 501, 0),
	refused("two Transfer-Encoding headers", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, 0),
	// A bad chunk header fails the body read in the handler (which then
	// answers 400 and asks to close); the server must not read on.
	refused("chunk size not hexadecimal", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, 1),
	refused("chunk size overflowing 64 bits", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", 400, 1),
	refused("negative chunk size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400, 1),
	refused("chunk size with a 0x prefix", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400, 1),
	refused("chunk data longer than its size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400, 1),
	refused("bare LF after a chunk size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400, 1),
	refused("bare LF after chunk data", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400, 1),
	refused("bare CR ending a header line", "GET /a HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400, 0),
	refused("obs-fold on the first header line", "GET /a HTTP/1.1\r\n Host: x\r\n\r\n", 400, 0),
	refused("NUL in a header value", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, 0),
	refused("CR in a header value", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, 0),
	refused("space in a header name", "GET /a HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", 400, 0),
	// A front end that takes "Content-Length : n" as the Content-Length
	// forwards the next request as this one's body; h1 must refuse it as
	// net/http does rather than serve the body as a request.
	refused("space before the colon of Content-Length",
		"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length : 35\r\n\r\n"+withSmuggled(""), 400, 0),
	refused("invalid character in a header name", "GET /a HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n", 400, 0),
	refused("header line without a colon", "GET /a HTTP/1.1\r\nHost: x\r\nX-A b\r\n\r\n", 400, 0),
	refused("missing Host on HTTP/1.1", "GET /a HTTP/1.1\r\n\r\n", 400, 0),
	{
		name:  "empty Host on HTTP/1.1 (documented deviation: net/http accepts it)",
		steps: one(withSmuggled("GET /a HTTP/1.1\r\nHost:\r\n\r\n")),
		want:  []int{400}, open: false, calls: 0, allow: allowEmptyHost,
	},
	refused("two Host headers", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, 0),
	refused("invalid Host", "GET /a HTTP/1.1\r\nHost: a<b\r\n\r\n", 400, 0),
	{
		name:  "absolute-form target without a Host header",
		steps: one(withSmuggled("GET http://example.com/a HTTP/1.1\r\n\r\n")),
		want:  []int{400}, open: false, calls: 0,
	},
	{
		name:  "absolute-form target with an invalid Host header",
		steps: one(withSmuggled("GET http://example.com/a HTTP/1.1\r\nHost: a<b\r\n\r\n")),
		want:  []int{400}, open: false, calls: 0,
	},
	// Found by FuzzServer.
	refused("CONNECT with an invalid Host header", "CONNECT example.com:443 HTTP/1.1\r\nHost: a\"b\r\n\r\n", 400, 0),
	refused("HTTP/2.0 request line", "GET /a HTTP/2.0\r\nHost: x\r\n\r\n", 505, 0),
	refused("HTTP/0.9 version in the request line", "GET /a HTTP/0.9\r\nHost: x\r\n\r\n", 505, 0),
	refused("HTTP/0.9 simple request line", "GET /a\r\n\r\n", 400, 0),
	refused("malformed version", "GET /a HTTP/1.x\r\nHost: x\r\n\r\n", 400, 0),
	refused("request line with an extra field", "GET /a HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, 0),
	refused("request target with a space", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0),
	refused("invalid method", "G(T /a HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0),
	refused("headers far bigger than MaxHeaderBytes", "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 64*maxHeaderBytesForTests)+"\r\n\r\n", 431, 0),
	// net/http reads at most MaxHeaderBytes + 4096 bytes for a request's
	// line and headers; 7000 bytes of headers are past that.
	refused("headers past MaxHeaderBytes + 4096 on the first request", "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 7000)+"\r\n\r\n", 431, 0),
	refused("Expect: something-else", "POST /a HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\nhello", 417, 0),
}

func TestSmuggling(t *testing.T) {
	t.Parallel()
	runDiffCases(t, smugglingCases)
}
