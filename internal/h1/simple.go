package h1

// The fast path for requests: a bodiless request in origin form whose
// line and headers are all in the read buffer, in the strict form browsers
// and load balancers send, is read here without http.ReadRequest's
// allocations. Everything else, including every request with a body or
// with a framing header, goes to http.ReadRequest, which then decides:
// this path never frames a body, so it adds no request-smuggling surface
// of its own. The differential tests check that for any bytes it accepts,
// http.ReadRequest and readRequest's checks give the same request.

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// parseSimpleRequest reads the request at the start of b into *req and
// returns the length of its head, when b holds the whole head of a
// request in the simple form:
//
//   - the line "METHOD /target HTTP/1.1" (or HTTP/1.0) with a token
//     method and a target of visible ASCII starting with "/";
//   - fields ParseFieldsInto reads, with exactly one Host field, valid and
//     not empty, and no Content-Length or Transfer-Encoding field;
//   - every line ending in CRLF.
//
// It reports false otherwise, with *req unspecified and h holding some
// fields (the caller clears it). req is filled as http.ReadRequest fills
// it, with h (which must be empty) as its header and the Host field moved
// to req.Host; RemoteAddr and the context are the caller's. Its strings
// share one allocation. req.URL is u, filled in, unless the target needs
// url.ParseRequestURI.
func parseSimpleRequest(b []byte, req *http.Request, h http.Header, u *url.URL) (int, bool) {
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		return 0, false
	}
	lineEnd := bytes.IndexByte(b, '\n')
	if lineEnd < 1 || b[lineEnd-1] != '\r' {
		return 0, false
	}
	// The request line, checked on the bytes before anything is made a
	// string.
	line := b[:lineEnd-1]
	sp := 0
	for sp < len(line) && isTokenByte(line[sp]) {
		sp++
	}
	const proto11, proto10 = " HTTP/1.1", " HTTP/1.0"
	if sp == 0 || sp+1 >= len(line) || line[sp] != ' ' || line[sp+1] != '/' || len(line) < sp+1+len(proto11) {
		return 0, false
	}
	protoAt := len(line) - len(proto11)
	minor := 1
	switch string(line[protoAt:]) {
	case proto11:
	case proto10:
		minor = 0
	default:
		return 0, false
	}
	for _, c := range line[sp+1 : protoAt] {
		if c <= ' ' || c >= 0x7f {
			return 0, false
		}
	}

	head := string(b[:end+4])
	if !ParseFieldsInto(h, head[lineEnd+1:end+2]) {
		return 0, false
	}
	hosts := h["Host"]
	if len(hosts) != 1 || hosts[0] == "" || !httpguts.ValidHostHeader(hosts[0]) {
		return 0, false
	}
	if _, ok := h["Content-Length"]; ok {
		return 0, false
	}
	if _, ok := h["Transfer-Encoding"]; ok {
		return 0, false
	}
	target := head[sp+1 : protoAt]
	u, ok := parseTarget(target, u)
	if !ok {
		return 0, false
	}
	delete(h, "Host")
	FixPragmaCacheControl(h)
	*req = http.Request{
		Method:     head[:sp],
		URL:        u,
		Proto:      head[protoAt+1 : lineEnd-1],
		ProtoMajor: 1,
		ProtoMinor: minor,
		Header:     h,
		Body:       http.NoBody,
		Close:      shouldClose(minor, h),
		Host:       hosts[0],
		RequestURI: target,
	}
	return end + 4, true
}

// FixPragmaCacheControl treats "Pragma: no-cache" as "Cache-Control:
// no-cache" when there is no Cache-Control, as http.ReadRequest and
// http.ReadResponse do (RFC 9111 section 5.4). The proxy's reader of
// simple responses uses it too.
func FixPragmaCacheControl(h http.Header) {
	if hp, ok := h["Pragma"]; ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
}

// shouldClose reports whether an HTTP/1.minor request with header h asks
// for the connection to close after its answer, as http.ReadRequest
// decides it.
func shouldClose(minor int, h http.Header) bool {
	conv := h["Connection"]
	if httpguts.HeaderValuesContainsToken(conv, "close") {
		return true
	}
	return minor == 0 && !httpguts.HeaderValuesContainsToken(conv, "keep-alive")
}

// parseTarget parses a request target in origin form as
// url.ParseRequestURI does. A path of characters that need no escaping
// (as most are) is taken as it is, without the parser, into u; any other
// goes to url.ParseRequestURI, into a new URL.
func parseTarget(target string, u *url.URL) (*url.URL, bool) {
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !isPlainPathByte(path[i]) {
			u, err := url.ParseRequestURI(target)
			return u, err == nil
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return u, true
}

// isPlainPathByte reports whether c stands for itself in a URL path:
// url.URL's escaping of the path leaves it as it is.
func isPlainPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '~', '/', '$', '&', '+', ',', ':', ';', '=', '@':
		return true
	}
	return false
}
