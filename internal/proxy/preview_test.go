package proxy

import (
	"net/http"
	"testing"
	"time"
)

func TestPreviewByCookieOrHeader(t *testing.T) {
	for _, sticky := range []bool{false, true} {
		p, url := twoReleases(t, Options{Sticky: sticky})
		// Even a weight does not send plain traffic to a release in preview.
		p.SetWeights(map[string]int{"r1": 100, "r2": 100})
		p.SetPreview("r2")
		if got := p.Preview(); got != "r2" {
			t.Errorf("Preview: got %q, want %q", got, "r2")
		}
		c := newClient(t)
		for range 4 {
			resp, body := send(t, c, url, nil)
			if body != "r1" {
				t.Errorf("sticky=%v: plain request during preview: got %q, want %q", sticky, body, "r1")
			}
			if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("sticky=%v: Set-Cookie with one live release: got %q, want none", sticky, sc)
			}
		}
		if _, body := send(t, c, url, withCookie("r2")); body != "r2" {
			t.Errorf("sticky=%v: preview cookie: got %q, want %q", sticky, body, "r2")
		}
		if _, body := send(t, c, url, withHeader("r2")); body != "r2" {
			t.Errorf("sticky=%v: preview header: got %q, want %q", sticky, body, "r2")
		}
		if _, body := send(t, c, url, withHeader("R2")); body != "r1" {
			t.Errorf("sticky=%v: header naming the preview in other case: got %q, want %q", sticky, body, "r1")
		}
		p.SetPreview("")
		got := map[string]int{}
		for range 4 {
			_, body := send(t, c, url, nil)
			got[body]++
		}
		if got["r1"] != 2 || got["r2"] != 2 {
			t.Errorf("sticky=%v: plain requests after preview ended: got %v, want 2 each", sticky, got)
		}
	}
}

func TestPreviewWithZeroWeight(t *testing.T) {
	p, url := twoReleases(t, Options{Sticky: true})
	p.SetActive("r1")
	p.SetPreview("r2")
	c := newClient(t)
	if _, body := send(t, c, url, withHeader("r2")); body != "r2" {
		t.Errorf("preview header with weight 0: got %q, want %q", body, "r2")
	}
	if _, body := send(t, c, url, nil); body != "r1" {
		t.Errorf("plain request: got %q, want %q", body, "r1")
	}
}

func TestPreviewHandler(t *testing.T) {
	p := New(Options{HoldTimeout: 20 * time.Millisecond})
	_, url := startHandler(t, p, func(http.Handler) http.Handler { return p.PreviewHandler() })
	addHealthy(p, "a1", "r1", nameBackend(t, "r1"))
	b := p.AddBackend(BackendSpec{ID: "b1", Release: "r2", Addr: nameBackend(t, "r2")})
	p.SetActive("r1")
	c := newClient(t)

	resp, body := send(t, c, url, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || body != "cutover: no release in preview\n" {
		t.Errorf("no preview: got %d %q, want %d %q", resp.StatusCode, body,
			http.StatusServiceUnavailable, "cutover: no release in preview\n")
	}

	p.SetPreview("r2")
	// Not healthy yet: held, then 503 after HoldTimeout.
	if resp, _ := send(t, c, url, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("preview without healthy backend: got %d, want %d", resp.StatusCode, http.StatusServiceUnavailable)
	}
	b.SetHealthy(true)
	for range 3 {
		resp, body := send(t, c, url, withHeader("r1"))
		if body != "r2" {
			t.Errorf("preview handler: got %q, want %q (whatever the request asks)", body, "r2")
		}
		if got := resp.Header.Get(DefaultVersionHeader); got != "r2" {
			t.Errorf("version header: got %q, want %q", got, "r2")
		}
	}

	p.SetPreview("")
	if resp, _ := send(t, c, url, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after preview ended: got %d, want %d", resp.StatusCode, http.StatusServiceUnavailable)
	}
}

func TestPreviewHandlerReleasedWhenPreviewEnds(t *testing.T) {
	p := New(Options{})
	entered := make(chan struct{}, 1)
	_, url := startHandler(t, p, func(http.Handler) http.Handler {
		h := p.PreviewHandler()
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			h.ServeHTTP(w, r)
		})
	})
	p.SetPreview("r2")
	statuses := make(chan int, 1)
	go func() {
		resp, _ := send(t, newClient(t), url, nil)
		statuses <- resp.StatusCode
	}()
	recv(t, entered, "preview request")
	// Held (no healthy backend of r2) or not yet looked at the table:
	// either way the request must end at once, not after HoldTimeout (30s).
	p.SetPreview("")
	if got := recv(t, statuses, "held preview request"); got != http.StatusServiceUnavailable {
		t.Errorf("held preview request after preview ended: got %d, want %d", got, http.StatusServiceUnavailable)
	}
}
