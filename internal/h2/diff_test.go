package h2

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

// dumpRequest writes what a handler sees of r, but for what differs by
// connection (RemoteAddr's port, TLS session details).
func dumpRequest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %d.%d host=%s uri=%s url=%s\n", r.Method, r.Proto, r.URL.Path, r.ProtoMajor, r.ProtoMinor, r.Host, r.RequestURI, r.URL)
	fmt.Fprintf(&b, "cl=%d body=%q err=%v tls=%v\n", r.ContentLength, body, err, r.TLS != nil)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %q\n", k, r.Header[k])
	}
	fmt.Fprintf(&b, "trailer: %v\n", r.Trailer)
	io.WriteString(w, b.String()) //nolint:errcheck // compared by the client
}

// TestSameRequestAsNetHTTP checks that a handler sees the same request
// from this server as from net/http's HTTP/2 server, for the same
// client requests.
func TestSameRequestAsNetHTTP(t *testing.T) {
	ours := startServer(t, http.HandlerFunc(dumpRequest), nil)
	theirs := httptest.NewUnstartedServer(http.HandlerFunc(dumpRequest))
	theirs.EnableHTTP2 = true
	cert, _ := testTLS()
	theirs.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	theirs.StartTLS()
	defer theirs.Close()
	c := ours.client(t)
	type req struct {
		method, path, body string
		header             http.Header
		trailer            http.Header
		noLength           bool
	}
	reqs := []req{
		{method: "GET", path: "/a/b?c=d&e=%20f"},
		{method: "GET", path: "/", header: http.Header{"Cookie": {"a=1", "b=2"}, "X-Multi": {"1", "2"}, "Accept-Encoding": {"br"}}},
		{method: "POST", path: "/form", body: "x=1&y=2", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
		{method: "PUT", path: "/stream", body: "unknown length", noLength: true},
		{method: "POST", path: "/t", body: "with trailer", noLength: true, trailer: http.Header{"X-Sum": {"7"}}},
		{method: "HEAD", path: "/head"},
		{method: "DELETE", path: "/%7Euser/x%2Fy"},
	}
	for _, rq := range reqs {
		get := func(base string) string {
			var body io.Reader
			if rq.body != "" {
				body = strings.NewReader(rq.body)
				if rq.noLength {
					body = io.NopCloser(body)
				}
			}
			r, err := http.NewRequest(rq.method, base+rq.path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range rq.header {
				r.Header[k] = v
			}
			r.Trailer = rq.trailer
			r.Host = "example.com"
			resp, err := c.Do(r)
			if err != nil {
				t.Fatalf("%s %s: %v", rq.method, rq.path, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body) //nolint:errcheck // compared
			if rq.method == "HEAD" {
				return fmt.Sprintf("%d %s", resp.StatusCode, resp.Proto)
			}
			return string(b)
		}
		theirsURL := strings.TrimSuffix(theirs.URL, "/")
		oursURL := strings.TrimSuffix(ours.url(), "/")
		if a, b := get(theirsURL), get(oursURL); a != b {
			t.Errorf("%s %s:\nnet/http's handler saw:\n%s\nthis server's:\n%s", rq.method, rq.path, a, b)
		}
	}
}
