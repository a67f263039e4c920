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

// TestSameResponseAsNetHTTP checks that a client sees the same responses
// from this server as from net/http's HTTP/2 server for the same
// handler (Content-Type set: net/http guesses one where this server, as
// package h1, does not).
func TestSameResponseAsNetHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "hello") //nolint:errcheck // compared
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello") //nolint:errcheck // compared
		case "/big":
			io.WriteString(w, strings.Repeat("x", 10000)) //nolint:errcheck // compared
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/notmodified":
			w.Header().Set("Etag", `"a"`)
			w.WriteHeader(http.StatusNotModified)
		case "/cookies":
			w.Header().Add("Set-Cookie", "a=1")
			w.Header().Add("Set-Cookie", "b=2")
			w.Header().Add("Vary", "Accept")
			w.Header().Add("Vary", "Cookie")
			w.WriteHeader(201)
		case "/flush":
			io.WriteString(w, "one") //nolint:errcheck // compared
			w.(http.Flusher).Flush()
			io.WriteString(w, "two") //nolint:errcheck // compared
		case "/trailers":
			w.Header().Set("Trailer", "X-A")
			io.WriteString(w, "body") //nolint:errcheck // compared
			w.Header().Set("X-A", "1")
			w.Header().Set(http.TrailerPrefix+"X-B", "2")
		case "/hop":
			w.Header().Set("Connection", "close")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "hop") //nolint:errcheck // compared
		}
	})
	ours := startServer(t, h, nil)
	theirs := httptest.NewUnstartedServer(h)
	theirs.EnableHTTP2 = true
	cert, _ := testTLS()
	theirs.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	theirs.StartTLS()
	defer theirs.Close()
	c := ours.client(t)
	// Known differences: this server encodes the headers when the handler
	// calls WriteHeader, so a response whose status was set explicitly
	// gets no Content-Length (net/http's computes one when the handler
	// returns first); it drops Keep-Alive, which RFC 9113 section 8.2.2
	// forbids and net/http sends.
	explicit := map[string]bool{"/cookies": true}
	get := func(url string) string {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Header.Del("Keep-Alive")
		if explicit[resp.Request.URL.Path] {
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %d cl=%d body=%q err=%v\n", resp.Proto, resp.StatusCode, resp.ContentLength, body, err)
		keys := make([]string, 0, len(resp.Header))
		for k := range resp.Header {
			if k != "Date" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %q\n", k, resp.Header[k])
		}
		fmt.Fprintf(&b, "date=%v trailer: %v\n", resp.Header.Get("Date") != "", resp.Trailer)
		return b.String()
	}
	for _, path := range []string{"/small", "/length", "/big", "/nocontent", "/notmodified", "/cookies", "/flush", "/trailers", "/hop"} {
		if a, b := get(theirs.URL+path), get(ours.url()+path[1:]); a != b {
			t.Errorf("GET %s:\nfrom net/http's server:\n%s\nfrom this one:\n%s", path, a, b)
		}
	}
}
