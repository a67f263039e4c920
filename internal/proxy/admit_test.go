package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawRequest sends raw on a new connection to the proxy at url and
// returns the status and body of the answer.
func rawRequest(t testing.TB, url, raw string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), waitLimit)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitLimit))
	go func() {
		// The proxy may refuse and close before the end of raw.
		_, _ = io.WriteString(c, raw)
	}()
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("sent %.60q: reading the answer: %v", raw, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("sent %.60q: reading the body: %v", raw, err)
	}
	return resp.StatusCode, string(b)
}

// TestHeadLimitsConfigured checks that Options.MaxRequestLineBytes and
// MaxHeaderBytes bound the heads the proxy's server takes: at the bound a
// request reaches the app, a byte over it is refused by the proxy.
func TestHeadLimitsConfigured(t *testing.T) {
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app")
	})
	const maxLine, maxHead = 2048, 3000
	p, url := startProxy(t, Options{MaxRequestLineBytes: maxLine, MaxHeaderBytes: maxHead})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	line := func(n int) string { // a request line of n bytes, CRLF included
		return "GET /" + strings.Repeat("a", n-len("GET / HTTP/1.1\r\n")) + " HTTP/1.1\r\n"
	}
	head := func(n int) string { // a head of n bytes
		const start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "
		return start + strings.Repeat("b", n-len(start)-4) + "\r\n\r\n"
	}
	for _, c := range []struct {
		name string
		raw  string
		want int
	}{
		{"line at the bound", line(maxLine) + "Host: x\r\n\r\n", 200},
		{"line a byte over", line(maxLine+1) + "Host: x\r\n\r\n", http.StatusRequestURITooLong},
		{"head at the bound", head(maxHead), 200},
		{"head a byte over", head(maxHead + 1), http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := rawRequest(t, url, c.raw)
			if status != c.want {
				t.Fatalf("got %d %q, want %d", status, body, c.want)
			}
			if status == 200 && body != "app" {
				t.Errorf("body %q, want the app's", body)
			}
		})
	}
}

func TestClimbs(t *testing.T) {
	for _, c := range []struct {
		target string
		want   bool
	}{
		{"/", false},
		{"/a/b?c=d", false},
		{"/a/..", false},
		{"/a/../b/./c", false},
		{"/a/b/../../c", false},
		{"/.well-known/acme-challenge/x", false},
		{"/...", false},
		{"/a..b/..c/d..", false},
		{"/a//../x", false},
		{"/%2e", false},
		{"/%252e%252e/x", false}, // encoded twice: the app decodes once
		{"/..%00/x", false},
		{"/x?/../../etc", false},
		{"/x#/../../etc", false},
		{"/..", true},
		{"/../etc/passwd", true},
		{"/a/../..", true},
		{"/a/./../../x", true},
		{"/a/b/../../../x", true},
		{"/%2e%2e/x", true},
		{"/%2E%2e/x", true},
		{"/.%2e/x", true},
		{"/a/%2e%2e%2f%2e%2e%2fx", true},
		{"/x%2F..%2F..%2Fetc", true},
		{"/..;/x", true},
		{"/a/..;jsessionid=1/../x", true},
		{"//../x", true},
		{"/./../x", true},
	} {
		if got := climbs(c.target); got != c.want {
			t.Errorf("climbs(%q) = %v, want %v", c.target, got, c.want)
		}
	}
}

// TestAdmit sends what nginx refuses and the proxy used to pass to the
// app, with raw sockets, and checks each is refused by the proxy with its
// status, while the requests beside them reach the app with their target
// and Host unchanged.
func TestAdmit(t *testing.T) {
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app "+r.Method+" "+r.RequestURI+" host="+r.Host)
	})
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	listen := strings.TrimPrefix(url, "http://")

	for _, c := range []struct {
		name, raw string
		want      int
		wantBody  string // the app's answer, when it is one
	}{
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, ""},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, ""},
		{"climbing path", "GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"climbing path, encoded", "GET /a/%2e%2e/%2E%2E/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"climbing path with a body", "POST /../x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 400, ""},
		{"GET *", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"absolute form, ftp", "GET ftp://x/a HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"absolute form with user info", "GET http://u:p@x/a HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"absolute form, climbing", "GET http://x/a/../../etc HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},
		{"scheme and opaque", "GET other:80 HTTP/1.1\r\nHost: x\r\n\r\n", 400, ""},

		{"dot segments that stay inside, unchanged", "GET /a/./b/%2E/c//d/../e?x=/../.. HTTP/1.1\r\nHost: x\r\n\r\n", 200, "app GET /a/./b/%2E/c//d/../e?x=/../.. host=x"},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 200, ""},
		{"absolute form", "GET http://shop.example/p?q=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n", 200, "app GET /p?q=1 host=shop.example"},
		{"absolute form, https, no path", "GET HTTPS://shop.example HTTP/1.1\r\nHost: x\r\n\r\n", 200, "app GET / host=shop.example"},
		{"HTTP/1.0 without Host", "GET /a HTTP/1.0\r\n\r\n", 200, "app GET /a host=" + listen},
		{"HTTP/1.1 without Host", "GET /a HTTP/1.1\r\n\r\n", 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := rawRequest(t, url, c.raw)
			if status != c.want {
				t.Fatalf("got %d %q, want %d", status, body, c.want)
			}
			if c.want != 200 && strings.HasPrefix(body, "app") {
				t.Errorf("the app answered %q", body)
			}
			if c.wantBody != "" && body != c.wantBody {
				t.Errorf("got %q, want %q", body, c.wantBody)
			}
		})
	}
}

// climbsSlow is climbs written the plain way, for FuzzClimbs.
func climbsSlow(target string) bool {
	path := target
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for _, enc := range []string{"%2e", "%2E"} {
		path = strings.ReplaceAll(path, enc, ".")
	}
	for _, enc := range []string{"%2f", "%2F"} {
		path = strings.ReplaceAll(path, enc, "/")
	}
	depth := 0
	for _, seg := range strings.Split(path, "/")[1:] {
		seg, _, _ = strings.Cut(seg, ";")
		switch seg {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

func FuzzClimbs(f *testing.F) {
	for _, s := range []string{"/", "/../x", "/a/%2e%2e%2f..", "/..;/x", "/a//../..", "/%2", "/%2e%2", "/x?/..", "/.%2E./"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		target := "/" + s
		if got, want := climbs(target), climbsSlow(target); got != want {
			t.Errorf("climbs(%q) = %v, the plain reading says %v", target, got, want)
		}
	})
}

// BenchmarkAdmit measures the checks every request passes on its way to
// the app, for a browser's GET of an asset.
func BenchmarkAdmit(b *testing.B) {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /assets/app-3f9a1c.js?v=2 HTTP/1.1\r\nHost: shop.example\r\n\r\n")))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !admit(nil, r) {
			b.Fatal("refused")
		}
	}
}
