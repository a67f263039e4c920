package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Defaults for the version cookie and header.
const (
	// DefaultCookie is Options.Cookie's default.
	DefaultCookie = "cutover_release"
	// DefaultVersionHeader is Options.VersionHeader's default.
	DefaultVersionHeader = "X-Cutover-Release"
)

// selection is what a request asks of the routing: a release named by its
// version header or cookie, the release in preview by its token, or only
// the release in preview (the preview listener).
type selection struct {
	// t is the snapshot the request was first looked at with.
	t *table
	// want is the release named by the version header, else by the
	// cookie; "" when neither.
	want string
	// cookie is the request's version cookie value, "" when absent.
	cookie string
	// token is the preview token the request carried, when it was the
	// one of t's preview; "" otherwise. A request reaches a release in
	// preview only with its token: its name alone, which every response
	// shows, is no secret.
	token string
	// tokenByQuery is set when token came by PreviewParam: the answer
	// gives it as PreviewCookie, for the requests that follow the link.
	tokenByQuery bool
	// preview restricts the request to the release in preview.
	preview bool
}

// selectFor returns what r asks of the routing. The request's headers are
// only looked at when the answer can matter (two releases serve, one is in
// preview, or nothing can serve it now and it will be held), so that at
// steady state a request costs no cookie parsing. While a release is in
// preview, PreviewParam is removed from r's target.
func (p *Proxy) selectFor(r *http.Request, preview bool) selection {
	t := p.table.Load()
	s := selection{t: t, preview: preview}
	if t.previewToken != "" {
		s.token, s.tokenByQuery = previewToken(r, t)
	}
	if preview || !(t.inspect || len(t.weighted) == 0) {
		return s
	}
	s.cookie = cookieValue(r.Header, p.opts.Cookie)
	s.want = s.cookie
	if v := r.Header[p.versionKey]; len(v) > 0 && v[0] != "" {
		s.want = v[0]
	}
	return s
}

// stamp adds to the response headers h the release that answered and,
// when setCookie is set, the cookie that brings the client back to it:
// for the release in preview, PreviewCookie with its token (the request
// came by the preview link); for any other, when the snapshot pins
// clients and the request did not already carry that exact pin, the
// version cookie naming it. The cookie is marked Secure when the request
// came over TLS (r.TLS set), so a browser never sends it in clear.
func (p *Proxy) stamp(h http.Header, r *http.Request, rel *release, setCookie bool) {
	if !p.opts.HideVersion {
		h[p.versionKey] = rel.versionVals
	}
	if !setCookie {
		return
	}
	secure := 0
	if r.TLS != nil {
		secure = 1
	}
	line := rel.setCookie[secure]
	if t := p.table.Load(); t.preview == rel.name && t.previewToken != "" {
		line = t.previewCookie[secure]
	}
	if line == nil {
		return
	}
	if old := h["Set-Cookie"]; len(old) > 0 {
		// The backend's slice is shared with its response: never append
		// in place.
		h["Set-Cookie"] = append(old[:len(old):len(old)], line[0])
		return
	}
	h["Set-Cookie"] = line
}

// cookieValue returns the value of the first well-formed cookie called
// name in the Cookie headers of h, as net/http's Request.Cookie would, but
// without allocating; "" when there is none.
func cookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			if part == "" {
				continue
			}
			k, v, _ := strings.Cut(part, "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if !validCookieBytes(v) {
				continue
			}
			return v
		}
	}
	return ""
}

// validCookieBytes reports whether v holds only bytes net/http accepts in
// a received cookie value.
func validCookieBytes(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

// validCookieValue reports whether a release name can be sent as a cookie
// value as is: non-empty cookie-octets of RFC 6265 section 4.1.1.
func validCookieValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b <= 0x20 || b >= 0x7f || b == '"' || b == ',' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}
