package h1

// Well-formed exchanges h1 must answer as net/http does; the harness that
// runs them on both servers is in diff_test.go.

import (
	"slices"
	"strings"
	"testing"
)

// conformanceCases are well-formed exchanges h1 must answer as net/http.
var conformanceCases = []diffCase{
	{
		name:  "GET keep-alive, three requests one after the other",
		steps: rep(step{"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", []string{"GET"}}, 3),
		want:  []int{200, 200, 200}, open: true, calls: 3,
	},
	{
		name: "pipelined GET, POST, GET in one write",
		steps: one("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"+
			"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
			"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "POST", "GET"),
		want: []int{200, 200, 200}, open: true, calls: 3,
		check: func(t *testing.T, o outcome) {
			for i, want := range []string{"GET /1 ", "POST /2 ", "GET /3 "} {
				if !strings.HasPrefix(o.resps[i].body, want) {
					t.Errorf("answer %d = %q, want the answer to %q: pipelined answers out of order", i, o.resps[i].body, want)
				}
			}
		},
	},
	{
		name:  "HTTP/1.0 without keep-alive closes",
		steps: one("GET /a HTTP/1.0\r\n\r\n"),
		want:  []int{200}, open: false, calls: 1,
		check: wantProto("HTTP/1.0"),
	},
	{
		name:  "HTTP/1.0 with Connection: keep-alive and a Content-Length stays open",
		steps: rep(step{"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", []string{"GET"}}, 2),
		want:  []int{200, 200}, open: true, calls: 2,
		check: func(t *testing.T, o outcome) {
			for _, r := range o.resps {
				if !strings.EqualFold(r.conn, "keep-alive") {
					t.Errorf("answer to an HTTP/1.0 keep-alive request has Connection %q, want keep-alive", r.conn)
				}
			}
		},
	},
	{
		name:  "HTTP/1.0 keep-alive answered without a Content-Length",
		steps: one("GET /nocl HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
		want:  []int{200}, open: false, calls: 1, allow: allowNoCL10,
		check: wantBody(0, "hello"),
	},
	{
		name:  "HTTP/1.1 answer without a Content-Length is chunked",
		steps: one("GET /nocl HTTP/1.1\r\nHost: x\r\n\r\n"),
		want:  []int{200}, open: true, calls: 1,
		check: func(t *testing.T, o outcome) {
			if !o.resps[0].chunked || o.resps[0].body != "hello" {
				t.Errorf("got %v, want a chunked body \"hello\"", o.resps[0])
			}
		},
	},
	{
		name:  "Connection: close",
		steps: one("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
		want:  []int{200}, open: false, calls: 1,
		check: func(t *testing.T, o outcome) {
			if !o.resps[0].close {
				t.Errorf("answer to a Connection: close request %v does not announce the close", o.resps[0])
			}
		},
	},
	{
		name:  "Connection: close set by the handler",
		steps: one("GET /close HTTP/1.1\r\nHost: x\r\n\r\n"),
		want:  []int{200}, open: false, calls: 1,
	},
	{
		name:  "HEAD gets no body though the handler writes one",
		steps: one("HEAD /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /nocl HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD", "HEAD"),
		want:  []int{200, 200}, open: true, calls: 2,
		check: wantEmptyBodies,
	},
	{
		name:  "204 and 304 carry no body",
		steps: one("GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "GET"),
		want:  []int{204, 304}, open: true, calls: 2,
		check: func(t *testing.T, o outcome) {
			wantEmptyBodies(t, o)
			for _, r := range o.resps {
				if r.chunked || r.header.Get("Content-Length") != "" {
					t.Errorf("%d answer has framing headers: %v", r.status, r.header)
				}
			}
		},
	},
	{
		name:  "POST with Content-Length",
		steps: one("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world", "POST"),
		want:  []int{200}, open: true, calls: 1,
		check: wantCall(0, `POST /a HTTP/1.1 body="hello world"`),
	},
	{
		name:  "identical duplicate Content-Length headers",
		steps: one("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "POST"),
		want:  []int{200}, open: true, calls: 1,
		check: wantCall(0, `POST /a HTTP/1.1 body="hello"`),
	},
	{
		name:  "chunked request body",
		steps: one("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "POST"),
		want:  []int{200}, open: true, calls: 1,
		check: wantCall(0, `POST /a HTTP/1.1 body="hello world"`),
	},
	{
		name:  "chunked request body with extensions",
		steps: one("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\n\r\n", "POST"),
		want:  []int{200}, open: true, calls: 1,
		check: wantCall(0, `POST /a HTTP/1.1 body="hello"`),
	},
	{
		name: "chunked request body with trailers",
		steps: one("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
			"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n", "POST"),
		want: []int{200}, open: true, calls: 1,
		check: func(t *testing.T, o outcome) {
			if !strings.Contains(o.resps[0].body, "trailer=[X-Sum=42]") {
				t.Errorf("handler did not see the trailer X-Sum: 42; answered %q", o.resps[0].body)
			}
		},
	},
	{
		name:  "CRLF after a POST body is tolerated",
		steps: one("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", "POST", "GET"),
		want:  []int{200, 200}, open: true, calls: 2,
	},
	{
		name:  "absolute-form request target with a Host header",
		steps: one("GET http://example.com/a HTTP/1.1\r\nHost: other\r\n\r\n"),
		want:  []int{200}, open: true, calls: 1,
		check: func(t *testing.T, o outcome) {
			if !strings.Contains(o.resps[0].body, "host=example.com") {
				t.Errorf("request Host = %q, want example.com (the target's authority wins)", o.resps[0].body)
			}
		},
	},
	{
		name:  "bare LF line endings in the request line and headers",
		steps: one("GET /a HTTP/1.1\nHost: x\n\n"),
		want:  []int{200}, open: true, calls: 1,
	},
	{
		name:  "obs-fold continuation line in an ordinary header",
		steps: one("GET /a HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n"),
		want:  []int{200}, open: true, calls: 1,
	},
	{
		// RFC 9112 5.2 lets a server replace obs-fold with spaces; the
		// folded Transfer-Encoding is then chunked, for both servers.
		name: "Transfer-Encoding folded onto a continuation line",
		steps: one("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"+
			"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", "POST", "GET"),
		want: []int{200, 200}, open: true, calls: 2,
		check: wantCall(0, `POST /a HTTP/1.1 body="hello"`),
	},
	{
		name: "HTTP/1.1 Expect: 100-continue with the body already sent",
		steps: one("POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"+
			"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", "POST", "GET"),
		want: []int{200, 200}, open: true, calls: 2,
		check: func(t *testing.T, o outcome) {
			if !slices.Equal(o.resps[0].interim, []int{100}) {
				t.Errorf("interim answers %v, want one 100 Continue (the handler reads the body)", o.resps[0].interim)
			}
		},
	},
	{
		name:  "HTTP/1.0 request with Expect: 100-continue is served, the expectation ignored",
		steps: one("POST /a HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", "POST"),
		want:  []int{200}, open: false, calls: 1,
	},
}

func wantProto(p string) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		for _, r := range o.resps {
			if r.proto != p {
				t.Errorf("answer protocol %q, want %q", r.proto, p)
			}
		}
	}
}

func wantBody(i int, body string) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		if o.resps[i].body != body {
			t.Errorf("answer %d body %q, want %q", i, o.resps[i].body, body)
		}
	}
}

func wantCall(i int, call string) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		if o.calls[i] != call {
			t.Errorf("handler call %d = %q, want %q", i, o.calls[i], call)
		}
	}
}

func wantEmptyBodies(t *testing.T, o outcome) {
	for _, r := range o.resps {
		if r.body != "" {
			t.Errorf("answer %d has body %q, want none", r.status, r.body)
		}
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	runDiffCases(t, conformanceCases)
}
