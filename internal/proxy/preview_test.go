package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// withPreviewHeader returns a request editor adding the preview token
// header.
func withPreviewHeader(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(PreviewHeader, token) }
}

// withPreviewCookie returns a request editor adding the preview cookie.
func withPreviewCookie(token string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: PreviewCookie, Value: token}) }
}

// TestPreviewNeedsToken: a release in preview is reached only with its
// token, by header, cookie or query parameter; its name in the version
// header or cookie — which every response shows, and which was enough
// before — reaches the live release.
func TestPreviewNeedsToken(t *testing.T) {
	for _, sticky := range []bool{false, true} {
		p, url := twoReleases(t, Options{Sticky: sticky})
		// Even a weight does not send plain traffic to a release in preview.
		p.SetWeights(map[string]int{"r1": 100, "r2": 100})
		token := NewPreviewToken()
		p.SetPreview("r2", token)
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
		for name, edit := range map[string]func(*http.Request){
			"version cookie naming the preview":         withCookie("r2"),
			"version header naming the preview":         withHeader("r2"),
			"wrong token by header":                     withPreviewHeader(NewPreviewToken()),
			"wrong token by cookie":                     withPreviewCookie(NewPreviewToken()),
			"token of another case":                     withPreviewHeader(strings.ToLower(token)),
			"version header naming the preview in case": withHeader("R2"),
		} {
			if _, body := send(t, c, url, edit); body != "r1" {
				t.Errorf("sticky=%v: %s: got %q, want the live %q", sticky, name, body, "r1")
			}
		}
		if _, body := send(t, c, url+"/?"+PreviewParam+"=wrong", nil); body != "r1" {
			t.Errorf("sticky=%v: wrong token by query: got %q, want %q", sticky, body, "r1")
		}
		for name, edit := range map[string]func(*http.Request){
			"header": withPreviewHeader(token),
			"cookie": withPreviewCookie(token),
		} {
			resp, body := send(t, c, url, edit)
			if body != "r2" {
				t.Errorf("sticky=%v: token by %s: got %q, want %q", sticky, name, body, "r2")
			}
			if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("sticky=%v: token by %s: got Set-Cookie %q, want none", sticky, name, sc)
			}
		}
		resp, body := send(t, c, url+"/?"+PreviewParam+"="+token, nil)
		if body != "r2" {
			t.Errorf("sticky=%v: token by query: got %q, want %q", sticky, body, "r2")
		}
		if sc := resp.Header.Values("Set-Cookie"); len(sc) != 1 || sc[0] != PreviewCookie+"="+token+"; Path=/; HttpOnly; SameSite=Lax" {
			t.Errorf("sticky=%v: token by query: got Set-Cookie %q, want the preview cookie", sticky, sc)
		}
		p.SetPreview("", "")
		got := map[string]int{}
		for range 4 {
			_, body := send(t, c, url, withPreviewHeader(token))
			got[body]++
		}
		if got["r1"] != 2 || got["r2"] != 2 {
			t.Errorf("sticky=%v: requests after preview ended: got %v, want 2 each", sticky, got)
		}
	}
}

// TestPreviewParamStripped: the app never sees the preview query
// parameter; the others are passed byte for byte.
func TestPreviewParamStripped(t *testing.T) {
	p, url := startProxy(t, Options{})
	addHealthy(p, "a1", "r1", nameBackend(t, "r1"))
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RequestURI)
	})
	addHealthy(p, "b1", "r2", addr)
	p.SetActive("r1")
	token := NewPreviewToken()
	p.SetPreview("r2", token)
	c := newClient(t)
	for query, want := range map[string]string{
		PreviewParam + "=" + token:                               "/x",
		"a=1&" + PreviewParam + "=" + token + "&b=%20c":          "/x?a=1&b=%20c",
		PreviewParam + "=" + token + "&" + PreviewParam + "=old": "/x",
	} {
		if _, body := send(t, c, url+"/x?"+query, nil); body != want {
			t.Errorf("GET /x?%s: the app got %q, want %q", query, body, want)
		}
	}
	// The link wins over the cookie of an earlier preview.
	if _, body := send(t, c, url+"/x?"+PreviewParam+"="+token, withPreviewCookie("old")); body != "/x" {
		t.Errorf("link with a stale cookie: the app got %q, want %q", body, "/x")
	}
}

func TestPreviewWithZeroWeight(t *testing.T) {
	p, url := twoReleases(t, Options{Sticky: true})
	p.SetActive("r1")
	token := NewPreviewToken()
	p.SetPreview("r2", token)
	c := newClient(t)
	if _, body := send(t, c, url, withPreviewHeader(token)); body != "r2" {
		t.Errorf("preview token with weight 0: got %q, want %q", body, "r2")
	}
	if _, body := send(t, c, url, withHeader("r2")); body != "r1" {
		t.Errorf("version header naming the preview: got %q, want %q", body, "r1")
	}
	if _, body := send(t, c, url, nil); body != "r1" {
		t.Errorf("plain request: got %q, want %q", body, "r1")
	}
}

func TestNewPreviewToken(t *testing.T) {
	a, b := NewPreviewToken(), NewPreviewToken()
	if a == b || len(a) < 22 {
		t.Errorf("tokens %q, %q: want two different ones of at least 128 bits", a, b)
	}
	for _, c := range a {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", c) {
			t.Errorf("token %q: %q is not URL- and cookie-safe base32", a, c)
		}
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

	token := NewPreviewToken()
	p.SetPreview("r2", token)
	// Not healthy yet: held, then 503 after HoldTimeout.
	if resp, _ := send(t, c, url, withPreviewHeader(token)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("preview without healthy backend: got %d, want %d", resp.StatusCode, http.StatusServiceUnavailable)
	}
	b.SetHealthy(true)
	for name, edit := range map[string]func(*http.Request){
		"no token":                 nil,
		"version header naming it": withHeader("r2"),
		"wrong token":              withPreviewHeader(NewPreviewToken()),
	} {
		if resp, body := send(t, c, url, edit); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "preview token") {
			t.Errorf("preview handler, %s: got %d %q, want 403 naming the preview token", name, resp.StatusCode, body)
		}
	}
	for range 3 {
		resp, body := send(t, c, url, func(r *http.Request) {
			withHeader("r1")(r)
			withPreviewCookie(token)(r)
		})
		if body != "r2" {
			t.Errorf("preview handler: got %q, want %q (whatever the request asks)", body, "r2")
		}
		if got := resp.Header.Get(DefaultVersionHeader); got != "r2" {
			t.Errorf("version header: got %q, want %q", got, "r2")
		}
	}
	if resp, body := send(t, c, url+"/?"+PreviewParam+"="+token, nil); body != "r2" || len(resp.Header.Values("Set-Cookie")) != 1 {
		t.Errorf("preview handler, token by query: got %q, Set-Cookie %q; want %q and the preview cookie", body, resp.Header.Values("Set-Cookie"), "r2")
	}

	p.SetPreview("", "")
	if resp, _ := send(t, c, url, withPreviewHeader(token)); resp.StatusCode != http.StatusServiceUnavailable {
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
	token := NewPreviewToken()
	p.SetPreview("r2", token)
	statuses := make(chan int, 1)
	go func() {
		resp, _ := send(t, newClient(t), url, withPreviewHeader(token))
		statuses <- resp.StatusCode
	}()
	recv(t, entered, "preview request")
	// Held (no healthy backend of r2) or not yet looked at the table:
	// either way the request must end at once, not after HoldTimeout (30s).
	p.SetPreview("", "")
	if got := recv(t, statuses, "held preview request"); got != http.StatusServiceUnavailable {
		t.Errorf("held preview request after preview ended: got %d, want %d", got, http.StatusServiceUnavailable)
	}
}
