package h1

// The fast path for header fields: a block of fields in the strict form
// nearly every client and backend sends, read without net/textproto's
// allocations. Anything outside that form is left to net/http's parser,
// which then decides; the differential tests check that whatever the fast
// path accepts, net/http reads the same way.

import (
	"net/http"
	"strings"
)

// maxFastFields bounds the fields a block read by ParseFieldsInto may have;
// a longer block goes to net/http's parser.
const maxFastFields = 64

// ParseFieldsInto reads s, a block of header fields each ending in CRLF
// (without the empty line that ends the block), into h, which must be
// empty, as net/textproto's ReadMIMEHeader would, and reports true. A
// header map kept from one message to the next saves its allocations. It
// reports false when s is not in the strict form it reads: every line
// "name:value\r\n" with a token name, no space before the colon, and a
// value of visible ASCII, spaces and tabs only (no obs-text, no control
// characters, no bare CR or LF, no line folding), at most 64 fields; h
// then holds some of the fields (the caller clears it) and the block is
// left to net/http's parser.
//
// Names are canonicalized as by http.CanonicalHeaderKey; the names of
// common fields take no allocation. The values are substrings of s,
// trimmed of surrounding blanks, and share one backing array.
func ParseFieldsInto(h http.Header, s string) bool {
	n := strings.Count(s, "\n")
	if n > maxFastFields || (n == 0 && s != "") {
		return false
	}
	return parseFields(s, n, h)
}

// parseFields reads the n lines of s into h.
func parseFields(s string, n int, h http.Header) bool {
	if n == 0 {
		return true
	}
	vals := make([]string, n)
	var kbuf [64]byte
	for len(s) > 0 {
		// The name: token bytes up to the colon.
		i := 0
		for i < len(s) && isTokenByte(s[i]) {
			i++
		}
		if i == 0 || i >= len(s) || s[i] != ':' {
			return false
		}
		name := s[:i]
		s = s[i+1:]
		// The value: up to CRLF, visible ASCII and blanks only.
		j := 0
		for j < len(s) && IsTextByte(s[j]) {
			j++
		}
		if j+1 >= len(s) || s[j] != '\r' || s[j+1] != '\n' {
			return false
		}
		value := trimBlanks(s[:j])
		s = s[j+2:]

		key := canonicalKey(name, &kbuf)
		if vv, ok := h[key]; ok {
			h[key] = append(vv, value)
			continue
		}
		vals[0] = value
		h[key] = vals[0:1:1]
		vals = vals[1:]
	}
	return true
}

// canonicalKey returns name canonicalized as by http.CanonicalHeaderKey;
// name must be a token. A common name, or one already canonical, takes
// no allocation.
func canonicalKey(name string, buf *[64]byte) string {
	canonical := true
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
			break
		}
		upper = c == '-'
	}
	if canonical {
		return name
	}
	if len(name) > len(buf) {
		return http.CanonicalHeaderKey(name)
	}
	b := buf[:len(name)]
	upper = true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

// commonKeys interns the canonical names of common fields, so that a
// client sending them in lower case (as HTTP/2-minded clients do) costs
// no allocation per name.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Origin", "Age", "Authorization", "Cache-Control", "Cf-Connecting-Ip",
		"Connection", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Cookie",
		"Date", "Dnt", "Etag", "Expect", "Expires", "Forwarded", "From", "Host", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Keep-Alive",
		"Last-Modified", "Link", "Location", "Origin", "Pragma", "Priority", "Proxy-Authorization",
		"Range", "Referer", "Referrer-Policy", "Retry-After", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile",
		"Sec-Ch-Ua-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User",
		"Sec-Websocket-Extensions", "Sec-Websocket-Key", "Sec-Websocket-Protocol",
		"Sec-Websocket-Version", "Server", "Set-Cookie", "Strict-Transport-Security", "Te",
		"Trailer", "Transfer-Encoding", "Upgrade", "Upgrade-Insecure-Requests", "User-Agent",
		"Vary", "Via", "Www-Authenticate", "X-Content-Type-Options", "X-Cutover-Release",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Frame-Options",
		"X-Real-Ip", "X-Request-Id", "X-Requested-With",
	} {
		m[k] = k
	}
	return m
}()

// trimBlanks trims spaces and tabs around s, as net/textproto does.
func trimBlanks(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// IsTextByte reports whether c may be in a field value or a reason phrase
// that the strict fast paths read (ParseFieldsInto here, the proxy's simple
// responses): visible ASCII, space or tab. Anything else, obs-text
// included, is left to net/http.
func IsTextByte(c byte) bool {
	return c == '\t' || (c >= 0x20 && c < 0x7f)
}

// isTokenByte reports whether c is a tchar of RFC 9110 section 5.6.2.
func isTokenByte(c byte) bool {
	return c < 0x80 && tokenTable[c]
}

var tokenTable = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
