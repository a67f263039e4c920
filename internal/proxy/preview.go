package proxy

import "net/http"

// PreviewHandler returns a handler that serves only the release in preview
// (for a separate preview address): requests wait up to HoldTimeout for a
// healthy backend of it, and get 503 "no release in preview" when there
// is none. It never sets the version cookie.
func (p *Proxy) PreviewHandler() http.Handler {
	return previewHandler{p}
}

// previewHandler is the Proxy restricted to the release in preview.
type previewHandler struct{ p *Proxy }

// ServeHTTP forwards r to a healthy backend of the release in preview.
func (h previewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.p.serve(w, r, true)
}
