package proxy

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/cutover/cutover/internal/traffic"
)

// The names under which a request carries the preview token.
// The preview's credentials (traffic.PreviewHeader and the others).
const (
	PreviewHeader = traffic.PreviewHeader
	PreviewCookie = traffic.PreviewCookie
	PreviewParam  = traffic.PreviewParam
)

// NewPreviewToken returns a new random preview token
// (traffic.NewPreviewToken).
func NewPreviewToken() string { return traffic.NewPreviewToken() }

// PreviewHandler returns a handler that serves only the release in preview
// (for a separate preview address), to requests that carry its token
// (SetPreview): by PreviewHeader, PreviewCookie or PreviewParam. Requests
// with the token wait up to HoldTimeout for a healthy backend of it;
// others get 403. When no release is in preview they get 503 "no release
// in preview". It never sets the version cookie.
func (p *Proxy) PreviewHandler() http.Handler {
	return previewHandler{p}
}

// previewHandler is the Proxy restricted to the release in preview.
type previewHandler struct{ p *Proxy }

// ServeHTTP forwards r to a healthy backend of the release in preview.
func (h previewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.p.opts.AccessLog != nil {
		h.p.serveLogged(w, r, true)
		return
	}
	h.p.serve(w, r, true, nil)
}

// previewToken returns the preview token of t that r carries, "" when it
// carries none or another one. The header wins over the query parameter,
// which wins over the cookie (a browser holding the cookie of an earlier
// preview follows the link of this one). The query parameter is removed
// from r's target whatever its value: it is cutover's, not the app's.
// byQuery reports that the token matched came by the query parameter.
func previewToken(r *http.Request, t *table) (token string, byQuery bool) {
	fromQuery := stripPreviewParam(r)
	var got string
	switch {
	case len(r.Header[PreviewHeader]) > 0 && r.Header[PreviewHeader][0] != "":
		got = r.Header[PreviewHeader][0]
	case fromQuery != "":
		got, byQuery = fromQuery, true
	default:
		got = cookieValue(r.Header, PreviewCookie)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(t.previewToken)) != 1 {
		return "", false
	}
	return t.previewToken, byQuery
}

// stripPreviewParam removes every PreviewParam from r's query, in r.URL
// and in r.RequestURI (the target sent upstream), and returns the value of
// the first one; "" when there is none. The other parameters are kept
// byte for byte.
func stripPreviewParam(r *http.Request) string {
	q := r.URL.RawQuery
	if !strings.Contains(q, PreviewParam) {
		return ""
	}
	var value string
	found := false
	kept := make([]string, 0, 4)
	for part := range strings.SplitSeq(q, "&") {
		k, v, _ := strings.Cut(part, "=")
		if k != PreviewParam {
			kept = append(kept, part)
			continue
		}
		if !found {
			value, found = v, true
		}
	}
	if !found {
		return ""
	}
	nq := strings.Join(kept, "&")
	r.URL.RawQuery = nq
	if path, _, ok := strings.Cut(r.RequestURI, "?"); ok {
		if nq != "" {
			path += "?" + nq
		}
		r.RequestURI = path
	}
	return value
}

// previewSetCookie is the Set-Cookie value that gives a browser token,
// for a plain request ([0]) and, marked Secure, for one over TLS ([1]).
func previewSetCookie(token string) [2][]string {
	line := PreviewCookie + "=" + token + "; Path=/; HttpOnly; SameSite=Lax"
	return [2][]string{{line}, {line + "; Secure"}}
}
