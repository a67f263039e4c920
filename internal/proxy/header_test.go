package proxy

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestForwardedHeaders(t *testing.T) {
	seen := make(chan *http.Request, 1)
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r
	})
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	c := newClient(t)

	tests := []struct {
		name      string
		header    map[string]string
		wantXFF   string
		wantID    string // "" = a generated one
		wantAgent string
	}{
		{"plain", nil, "127.0.0.1", "", ""},
		{"prior hop from a client, not trusted", map[string]string{"X-Forwarded-For": "10.0.0.1", "User-Agent": "shop-test"}, "127.0.0.1", "", "shop-test"},
		{"client id kept", map[string]string{"X-Request-Id": "abc-123"}, "127.0.0.1", "abc-123", ""},
		{"insane id replaced", map[string]string{"X-Request-Id": "bad id"}, "127.0.0.1", "", ""},
		{"id of 128 characters kept", map[string]string{"X-Request-Id": strings.Repeat("a", 128)}, "127.0.0.1", strings.Repeat("a", 128), ""},
		{"id of 129 characters replaced", map[string]string{"X-Request-Id": strings.Repeat("a", 129)}, "127.0.0.1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, url+"/path?q=1", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "shop.example"
			req.Header.Set("User-Agent", "")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			resp.Body.Close()
			r := recv(t, seen, "backend request")

			checks := []struct{ what, got, want string }{
				{"Host", r.Host, "shop.example"},
				{"URI", r.RequestURI, "/path?q=1"},
				{"X-Forwarded-For", r.Header.Get("X-Forwarded-For"), tt.wantXFF},
				{"X-Forwarded-Proto", r.Header.Get("X-Forwarded-Proto"), "http"},
				{"X-Forwarded-Host", r.Header.Get("X-Forwarded-Host"), "shop.example"},
				{"User-Agent", r.Header.Get("User-Agent"), tt.wantAgent},
				{"response X-Request-Id", resp.Header.Get("X-Request-Id"), r.Header.Get("X-Request-Id")},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
				}
			}
			id := r.Header.Get("X-Request-Id")
			if tt.wantID != "" && id != tt.wantID {
				t.Errorf("X-Request-Id: got %q, want %q", id, tt.wantID)
			}
			if tt.wantID == "" && (!strings.HasPrefix(id, p.idPrefix) || len(id) <= len(p.idPrefix)) {
				t.Errorf("X-Request-Id: got %q, want a generated one starting with %q", id, p.idPrefix)
			}
		})
	}
}

func TestRequestIDsUnique(t *testing.T) {
	p := New(Options{})
	seen := map[string]bool{}
	for range 1000 {
		id := p.newRequestID()
		if seen[id] {
			t.Fatalf("request ID %q generated twice", id)
		}
		seen[id] = true
	}
	if q := New(Options{}); q.idPrefix == p.idPrefix {
		t.Errorf("two proxies share the request ID prefix %q", p.idPrefix)
	}
}

func TestHopByHopHeadersStripped(t *testing.T) {
	seen := make(chan http.Header, 1)
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		h := w.Header()
		h.Set("Connection", "X-Back-Hop")
		h.Set("X-Back-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-Back-Kept", "1")
	})
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "X-Client-Hop, keep-alive")
	req.Header.Set("X-Client-Hop", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic eDp5")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("X-Client-Kept", "1")
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	got := recv(t, seen, "backend request")

	for _, k := range []string{"X-Client-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Upgrade"} {
		if v, ok := got[k]; ok {
			t.Errorf("backend got hop-by-hop header %s: %q, want none", k, v)
		}
	}
	if v := got.Get("Te"); v != "trailers" {
		t.Errorf("backend Te: got %q, want %q", v, "trailers")
	}
	if v := got.Get("X-Client-Kept"); v != "1" {
		t.Errorf("backend X-Client-Kept: got %q, want %q", v, "1")
	}
	for _, k := range []string{"X-Back-Hop", "Keep-Alive", "Proxy-Authenticate"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("client got hop-by-hop header %s: %q, want none", k, v)
		}
	}
	if v := resp.Header.Get("X-Back-Kept"); v != "1" {
		t.Errorf("client X-Back-Kept: got %q, want %q", v, "1")
	}
}

func TestTokenListed(t *testing.T) {
	tests := []struct {
		vals []string
		k    string
		want bool
	}{
		{[]string{"keep-alive, X-Foo"}, "X-Foo", true},
		{[]string{"keep-alive", " x-foo "}, "X-Foo", true},
		{[]string{"X-Foobar"}, "X-Foo", false},
		{[]string{""}, "X-Foo", false},
		{nil, "X-Foo", false},
		{[]string{"Upgrade"}, "upgrade", true},
	}
	for _, tt := range tests {
		if got := tokenListed(tt.vals, tt.k); got != tt.want {
			t.Errorf("tokenListed(%q, %q): got %v, want %v", tt.vals, tt.k, got, tt.want)
		}
	}
}

// TestTrustedProxies sends, with a raw socket from 127.0.0.1, a request
// carrying every forwarding field a client can forge, to a proxy that does
// not trust 127.0.0.1 and to one that does, and checks what the app sees.
func TestTrustedProxies(t *testing.T) {
	seen := make(chan http.Header, 1)
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	})
	const forged = "GET /a HTTP/1.1\r\nHost: shop.example\r\n" +
		"X-Forwarded-For: 203.0.113.7, 10.1.2.3\r\n" +
		"X-Forwarded-Proto: https\r\n" +
		"X-Forwarded-Host: admin.example\r\n" +
		"X-Forwarded-Port: 443\r\n" +
		"X-Forwarded-Ssl: on\r\n" +
		"Forwarded: for=203.0.113.7;proto=https\r\n" +
		"X-Real-Ip: 203.0.113.7\r\n" +
		"X-Request-Id: req-42\r\n\r\n"
	const lb = "GET /a HTTP/1.1\r\nHost: shop.example\r\n" +
		"X-Forwarded-For: 203.0.113.7, 10.1.2.3\r\n\r\n"
	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		raw     string
		want    map[string]string // "" = absent
	}{
		{"not trusted (default)", nil, forged, map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1",
			"X-Forwarded-Proto": "http", "X-Forwarded-Host": "shop.example",
			"X-Forwarded-Port": "", "X-Forwarded-Ssl": "", "Forwarded": "",
			"X-Request-Id": "req-42",
		}},
		{"not in the trusted networks", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, forged, map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1",
			"X-Forwarded-Proto": "http", "X-Forwarded-Host": "shop.example",
			"Forwarded": "",
		}},
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, forged, map[string]string{
			"X-Forwarded-For": "203.0.113.7, 10.1.2.3, 127.0.0.1", "X-Real-Ip": "203.0.113.7",
			"X-Forwarded-Proto": "https", "X-Forwarded-Host": "admin.example",
			"X-Forwarded-Port": "443", "X-Forwarded-Ssl": "on", "Forwarded": "for=203.0.113.7;proto=https",
			"X-Request-Id": "req-42",
		}},
		{"trusted, real IP from X-Forwarded-For", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}, lb, map[string]string{
			"X-Forwarded-For": "203.0.113.7, 10.1.2.3, 127.0.0.1", "X-Real-Ip": "203.0.113.7",
			"X-Forwarded-Proto": "http", "X-Forwarded-Host": "shop.example",
		}},
		{"trusted, last hop not trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, lb, map[string]string{
			"X-Forwarded-For": "203.0.113.7, 10.1.2.3, 127.0.0.1", "X-Real-Ip": "10.1.2.3",
		}},
		{"trusted, nothing forwarded", []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.0/104"), netip.MustParsePrefix("127.0.0.0/8")}, "GET /a HTTP/1.1\r\nHost: shop.example\r\n\r\n", map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, url := startProxy(t, Options{TrustedProxies: c.trusted})
			addHealthy(p, "a", "r1", addr)
			p.SetActive("r1")
			if status, body := rawRequest(t, url, c.raw); status != 200 {
				t.Fatalf("got %d %q", status, body)
			}
			got := recv(t, seen, "backend request")
			for k, want := range c.want {
				if v := strings.Join(got[k], ", "); v != want {
					t.Errorf("%s: got %q, want %q", k, v, want)
				}
			}
		})
	}
}
