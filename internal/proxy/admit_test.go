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
