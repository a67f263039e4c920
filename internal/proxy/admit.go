package proxy

// What the proxy refuses to pass to the app, answering by itself as
// nginx does: methods that make no sense through a reverse proxy, request
// targets that are not an HTTP resource of the app, and paths that climb
// above the root. Everything else reaches the app byte for byte: the
// proxy never normalises a path it passes.

import (
	"io"
	"net/http"
	"strings"
)

// Shared read-only header values of the proxy's refusals.
var (
	valuesTextPlain = []string{"text/plain; charset=utf-8"}
	valuesNosniff   = []string{"nosniff"}
	// valuesAllow is the Allow field of a 405 (RFC 9110 section 15.5.6):
	// the methods the proxy passes on (any other than CONNECT and TRACE is
	// passed too; the app decides).
	valuesAllow = []string{"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
)

// admit reports whether r may go to the app; when not, it has answered:
//
//   - CONNECT (a tunnel through the proxy) and TRACE (which echoes the
//     request, cookies and all, back to a script that cannot read them
//     otherwise: cross-site tracing) get 405, as from nginx. The one
//     CONNECT admitted is HTTP/2's extended CONNECT of a websocket (RFC
//     8441, isExtendedConnect), whose target is a path like any request's.
//   - A target "*" with another method than OPTIONS gets 400 (RFC 9112
//     section 3.2.4).
//   - A target in absolute form (GET http://host/path) must be http or
//     https with a host and no user info (RFC 9110 section 4.2.4); it
//     reaches the app in origin form with the target's host as Host (RFC
//     9112 section 3.2.2), as h1 reads it. Any other form gets 400.
//   - A path that climbs above the root (climbs) gets 400.
//
// It allocates nothing for a request it admits.
func admit(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodConnect:
		if !isExtendedConnect(r) {
			refuse(w, http.StatusMethodNotAllowed, "cutover: method "+r.Method+" is not allowed\n")
			return false
		}
	case http.MethodTrace:
		refuse(w, http.StatusMethodNotAllowed, "cutover: method "+r.Method+" is not allowed\n")
		return false
	}
	target := r.RequestURI
	if len(target) > 0 && target[0] == '/' {
		if climbs(target) {
			refuse(w, http.StatusBadRequest, "cutover: request path climbs above the root\n")
			return false
		}
		return true
	}
	if target == "*" {
		if r.Method == http.MethodOptions {
			return true
		}
		refuse(w, http.StatusBadRequest, "cutover: request target * is only for OPTIONS\n")
		return false
	}
	u := r.URL
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		refuse(w, http.StatusBadRequest, "cutover: request target must be a path such as /index.html\n")
		return false
	}
	// The path of the absolute form: from the first '/' after "scheme://".
	_, rest, _ := strings.Cut(target, "://")
	if i := strings.IndexByte(rest, '/'); i >= 0 && climbs(rest[i:]) {
		refuse(w, http.StatusBadRequest, "cutover: request path climbs above the root\n")
		return false
	}
	return true
}

// climbs reports whether the path of target (a request target starting
// with "/"; its path ends at '?' or '#') climbs above the root when its
// dot segments are removed (RFC 3986 section 5.2.4), where the removal
// would only have stopped at the root: "/../x", "/a/../../x". It reads
// the path as the apps behind the proxy might, so that none of them can
// be led outside its root: a dot may be written "%2e", a slash "%2F" (as
// nginx decodes them), repeated slashes count as one, and a segment is
// read up to a ';' ("..;" is ".." to Tomcat). Any other path is left to
// the app.
func climbs(target string) bool {
	// A dot segment starts right after a slash: "/." or "%2F.", or with
	// "%2e". Nearly every path has neither.
	if !strings.Contains(target, "/.") && !strings.Contains(target, "%2") {
		return false
	}
	depth := 0
	i := 1
	for i <= len(target) {
		// One segment, from i to its end: '/', "%2F", '?', '#' or the end.
		dots, other, params := 0, false, false
		j := i
	segment:
		for j < len(target) {
			switch c := target[j]; {
			case c == '/' || c == '?' || c == '#':
				break segment
			case c == '%' && j+2 < len(target) && target[j+1] == '2':
				switch target[j+2] {
				case 'f', 'F':
					break segment
				case 'e', 'E':
					if !params {
						dots++
					}
					j += 3
					continue
				}
			case c == '.':
				if !params {
					dots++
				}
				j++
				continue
			case c == ';':
				params = true
			}
			if !params {
				other = true
			}
			j++
		}
		switch {
		case other || dots > 2:
			depth++
		case dots == 2:
			if depth--; depth < 0 {
				return true
			}
		}
		// dots 0 (an empty segment) or 1 (".") leave the depth as is.
		if j >= len(target) || target[j] == '?' || target[j] == '#' {
			return false
		}
		if target[j] == '%' {
			i = j + 3
		} else {
			i = j + 1
		}
	}
	return false
}

// refuse answers a request the proxy does not pass on.
func refuse(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h["Content-Type"] = valuesTextPlain
	h["X-Content-Type-Options"] = valuesNosniff
	if status == http.StatusMethodNotAllowed {
		h["Allow"] = valuesAllow
	}
	w.WriteHeader(status)
	// A client that went away cannot be told anything else.
	_, _ = io.WriteString(w, msg)
}
