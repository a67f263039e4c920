package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// certNames is a CertChecker with a fixed set of names.
type certNames map[string]bool

func (c certNames) HasCertificate(name string) bool { return c[name] }

// serveRecorded runs one request through rt and returns its recording;
// overTLS gives the request a TLS state, as the TLS listener does.
func serveRecorded(rt *Router, method, url string, overTLS bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, url, nil)
	if overTLS {
		req.TLS = &tls.ConnectionState{}
	}
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	return rec
}

// TestRedirectHTTPS checks the front door on the plain listener: a host
// with a certificate whose app redirects gets 308 to the same URL in
// https (the TLS port when not 443); ACME's challenge path, a host without
// certificate, an app that opts out and requests over TLS are served.
func TestRedirectHTTPS(t *testing.T) {
	shop, blog := appProxy(t, "shop"), appProxy(t, "blog")
	rt := NewRouter(RouterOptions{Certs: certNames{"shop.example.com": true, "blog.example.com": true}, HTTPSPort: 8443})
	if err := rt.SetRoutes([]Route{
		{App: "shop", Hosts: []string{"shop.example.com", "nocert.example.com"}, Proxy: shop, RedirectHTTPS: true, HSTS: "max-age=60"},
		{App: "blog", Hosts: []string{"blog.example.com"}, Proxy: blog},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, method, url string
		overTLS           bool
		status            int
		location, body    string
		hsts              string
	}{
		{"redirected", "GET", "http://Shop.Example.com:8080/a/b?c=d&e", false, 308, "https://shop.example.com:8443/a/b?c=d&e", "", ""},
		{"post too", "POST", "http://shop.example.com/form", false, 308, "https://shop.example.com:8443/form", "", ""},
		{"acme challenge", "GET", "http://shop.example.com/.well-known/acme-challenge/tok", false, 200, "", "shop", ""},
		{"no certificate", "GET", "http://nocert.example.com/", false, 200, "", "shop", ""},
		{"opted out", "GET", "http://blog.example.com/", false, 200, "", "blog", ""},
		{"over TLS", "GET", "https://shop.example.com/", true, 200, "", "shop", "max-age=60"},
		{"over TLS, no HSTS", "GET", "https://blog.example.com/", true, 200, "", "blog", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := serveRecorded(rt, tt.method, tt.url, tt.overTLS)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (%q)", rec.Code, tt.status, rec.Body.String())
			}
			if got := rec.Header().Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Errorf("body %q, want %q", rec.Body.String(), tt.body)
			}
			if got := rec.Header().Get("Strict-Transport-Security"); got != tt.hsts {
				t.Errorf("Strict-Transport-Security %q, want %q", got, tt.hsts)
			}
		})
	}
}

// TestRedirectHTTPSPort443 checks that the default port is left out of
// the redirect, and that the single-app form (one default route)
// redirects as well.
func TestRedirectHTTPSPort443(t *testing.T) {
	rt := NewRouter(RouterOptions{Certs: certNames{"shop.example.com": true}})
	if err := rt.SetRoutes([]Route{{App: "shop", Default: true, Proxy: appProxy(t, "shop"), RedirectHTTPS: true}}); err != nil {
		t.Fatal(err)
	}
	rec := serveRecorded(rt, "GET", "http://shop.example.com/x", false)
	if rec.Code != 308 || rec.Header().Get("Location") != "https://shop.example.com/x" {
		t.Errorf("got %d Location %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := serveRecorded(rt, "GET", "http://127.0.0.1/x", false); rec.Code != 200 {
		t.Errorf("a host without certificate got %d", rec.Code)
	}
}

// oneToken is a ChallengeSolver that knows the token "x" only.
type oneToken struct{}

func (oneToken) HTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != ACMEChallengePath+"x" {
		return false
	}
	io.WriteString(w, "challenge "+r.URL.Path) //nolint:errcheck // recorded
	return true
}

// TestChallengeHandler checks that RouterOptions.Challenge is offered
// every plain request under the challenge path, whatever its host,
// before any routing or redirect; and that a token it does not know
// reaches the app (its own ACME client, certbot's webroot), not
// redirected.
func TestChallengeHandler(t *testing.T) {
	rt := NewRouter(RouterOptions{Challenge: oneToken{}, Certs: certNames{"shop.example.com": true}})
	if err := rt.SetRoutes([]Route{{App: "shop", Hosts: []string{"shop.example.com"}, Proxy: appProxy(t, "shop"), RedirectHTTPS: true}}); err != nil {
		t.Fatal(err)
	}
	for url, want := range map[string]struct {
		code int
		body string
	}{
		"http://unknown.org/.well-known/acme-challenge/x":      {200, "challenge /.well-known/acme-challenge/x"},
		"http://shop.example.com/.well-known/acme-challenge/x": {200, "challenge /.well-known/acme-challenge/x"},
		"http://shop.example.com/.well-known/acme-challenge/y": {200, "shop"},
		"http://unknown.org/.well-known/acme-challenge/y":      {404, unknownHostBody},
		"http://shop.example.com/":                             {308, ""},
	} {
		rec := serveRecorded(rt, "GET", url, false)
		if rec.Code != want.code || want.body != "" && rec.Body.String() != want.body {
			t.Errorf("%s: got %d %q, want %d %q", url, rec.Code, rec.Body.String(), want.code, want.body)
		}
	}
}

// TestCookieSecureOverTLS checks that the version cookie and the preview
// cookie are marked Secure on answers to requests that came over TLS,
// and only there: a browser then never sends them in clear.
func TestCookieSecureOverTLS(t *testing.T) {
	p := New(Options{App: "shop", Sticky: true})
	addHealthy(p, "a1", "a", nameBackend(t, "a"))
	addHealthy(p, "b1", "b", nameBackend(t, "b"))
	addHealthy(p, "c1", "c", nameBackend(t, "c"))
	p.SetWeights(map[string]int{"a": 50, "b": 50})
	p.SetPreview("c", "tok")
	rt := NewRouter(RouterOptions{})
	if err := rt.SetRoutes([]Route{{App: "shop", Default: true, Proxy: p}}); err != nil {
		t.Fatal(err)
	}
	for _, overTLS := range []bool{false, true} {
		for _, url := range []string{"http://shop.example.com/", "http://shop.example.com/?" + PreviewParam + "=tok"} {
			rec := serveRecorded(rt, "GET", url, overTLS)
			sc := rec.Header().Get("Set-Cookie")
			if sc == "" {
				t.Fatalf("%s (TLS %v): no cookie", url, overTLS)
			}
			if secure := strings.HasSuffix(sc, "; Secure"); secure != overTLS {
				t.Errorf("%s (TLS %v): Set-Cookie %q", url, overTLS, sc)
			}
		}
	}
}
