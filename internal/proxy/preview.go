package proxy

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"strings"
)

// The names under which a request carries the preview token.
const (
	// PreviewHeader is the request header carrying the preview token,
	// for scripts and smoke tests.
	PreviewHeader = "X-Cutover-Preview"
	// PreviewCookie is the cookie carrying the preview token, which a
	// browser gets from a first request with PreviewParam.
	PreviewCookie = "cutover_preview"
	// PreviewParam is the query parameter carrying the preview token: a
	// link to click. The proxy answers it with PreviewCookie and removes
	// it from the request before the app sees it.
	PreviewParam = "cutover_preview"
)

// NewPreviewToken returns a new random preview token: 130 bits from
// crypto/rand, 26 characters of base32 (A–Z, 2–7), safe in a URL, a
// cookie and a header as is.
func NewPreviewToken() string {
	return rand.Text()
}

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
	h.p.serve(w, r, true)
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

// previewSetCookie is the Set-Cookie value that gives a browser token.
func previewSetCookie(token string) []string {
	return []string{PreviewCookie + "=" + token + "; Path=/; HttpOnly; SameSite=Lax"}
}
