package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goBackendResponse is what a Go net/http backend answers a GET with a
// short text body: the three fields net/http sends itself.
const goBackendResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Length: 13\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
	"\r\n" +
	"Hello, World!"

// railsResponse is an answer of a Rails application behind nginx.
const railsResponse = "HTTP/1.1 200 OK\r\n" +
	"Server: nginx/1.25.3\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Length: 21\r\n" +
	"Connection: keep-alive\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"X-Frame-Options: SAMEORIGIN\r\n" +
	"X-XSS-Protection: 0\r\n" +
	"X-Content-Type-Options: nosniff\r\n" +
	"X-Permitted-Cross-Domain-Policies: none\r\n" +
	"Referrer-Policy: strict-origin-when-cross-origin\r\n" +
	"Link: </assets/application-5f1c.css>; rel=preload; as=style; nopush\r\n" +
	"ETag: W/\"9a0364b9e99bb480dd25e1f0284c8555\"\r\n" +
	"Cache-Control: max-age=0, private, must-revalidate\r\n" +
	"Set-Cookie: _shop_session=aGVsbG8gd29ybGQ%3D--4f0a; path=/; HttpOnly; SameSite=Lax\r\n" +
	"X-Request-Id: 0b5e4a53-1f1e-4a4c-9c1a-6f1d2e3c4b5a\r\n" +
	"X-Runtime: 0.012345\r\n" +
	"Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n" +
	"\r\n" +
	"<html>hello</html>\r\n\r"

// headCase is a stream of responses and what the fast path and net/http
// must make of it.
type headCase struct {
	name    string
	methods []string // request methods in turn (see checkDifferential); none: GET
	raw     string
	split   int    // bytes of raw in the backend's first packet; 0: all
	accept  []bool // by response, whether the fast path reads it
	stdErr  bool   // net/http fails on the last response
}

// withFields returns a 200 response with n fields X-F-0.. and a body of
// one byte, after extra fields.
func withFields(n int, extra string) string {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\n" + extra)
	for i := range n {
		fmt.Fprintf(&b, "X-F-%d: v%d\r\n", i, i)
	}
	b.WriteString("\r\nx")
	return b.String()
}

// cl1 is the head of a 200 response with a one-byte body, without the
// empty line.
const cl1 = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"

var headCases = []headCase{
	// Accepted.
	{name: "Go backend", raw: goBackendResponse, accept: []bool{true}},
	{name: "Go backend JSON 201", raw: "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 11\r\n\r\n{\"id\":1234}", accept: []bool{true}},
	{name: "Rails behind nginx", raw: railsResponse, accept: []bool{true}},
	{name: "Set-Cookie repeated", raw: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nContent-Length: 2\r\nSet-Cookie: b=2; HttpOnly\r\nSet-Cookie: c=3\r\n\r\nok", accept: []bool{true}},
	{name: "lower-case names", raw: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\nx-custom-thing: 1\r\nsERVER: x\r\n\r\nok", accept: []bool{true}},
	{name: "Connection close", raw: cl1 + "Connection: close\r\n\r\nx", accept: []bool{true}},
	{name: "Connection keep-alive", raw: cl1 + "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nx", accept: []bool{true}},
	{name: "Connection Keep-Alive, Close", raw: cl1 + "Connection: Keep-Alive, Close\r\n\r\nx", accept: []bool{true}},
	{name: "Connection close in a second field", raw: cl1 + "Connection: x-trace\r\nconnection: CLOSE\r\n\r\nx", accept: []bool{true}},
	{name: "Connection closed, not close", raw: cl1 + "Connection: closed\r\n\r\nx", accept: []bool{true}},
	{name: "Pragma no-cache", raw: cl1 + "Pragma: no-cache\r\n\r\nx", accept: []bool{true}},
	{name: "Pragma no-cache and Cache-Control", raw: cl1 + "Pragma: no-cache\r\nCache-Control: max-age=60\r\n\r\nx", accept: []bool{true}},
	{name: "Pragma no-cache not first", raw: cl1 + "Pragma: x\r\nPragma: no-cache\r\n\r\nx", accept: []bool{true}},
	{name: "Pragma No-Cache", raw: cl1 + "Pragma: No-Cache\r\n\r\nx", accept: []bool{true}},
	{name: "Content-Length 0", raw: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", accept: []bool{true}},
	{name: "Content-Length 00 then a response", raw: "HTTP/1.1 200 OK\r\nContent-Length: 00\r\n\r\n" + goBackendResponse, accept: []bool{true, true}},
	{name: "leading zeros", raw: "HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n1234567", accept: []bool{true}},
	{name: "blanks around Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: \t 2 \t\r\n\r\nok", accept: []bool{true}},
	{name: "body truncated", raw: "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc", accept: []bool{true}},
	{name: "18-digit length truncated", raw: "HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\n\r\nabc", accept: []bool{true}},
	{name: "body missing", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", accept: []bool{true}},
	{name: "two pipelined", raw: goBackendResponse + railsResponse, accept: []bool{true, true}},
	{name: "after a refused one", raw: "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n" + goBackendResponse + goBackendResponse, accept: []bool{false, true, true}},
	{name: "garbage after the body", raw: goBackendResponse + "HTTP/1.1 2", accept: []bool{true, false}, stdErr: true},
	{name: "404", raw: "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 19\r\n\r\n404 page not found\n", accept: []bool{true}},
	{name: "500", raw: "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nerr", accept: []bool{true}},
	{name: "599", raw: "HTTP/1.1 599 Whatever\r\nContent-Length: 3\r\n\r\nerr", accept: []bool{true}},
	{name: "no reason", raw: "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", accept: []bool{true}},
	{name: "empty reason", raw: "HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nx", accept: []bool{true}},
	{name: "reason with spaces and tabs", raw: "HTTP/1.1 200  All  is\twell \t\r\nContent-Length: 1\r\n\r\nx", accept: []bool{true}},
	{name: "Trailer without chunking", raw: cl1 + "Trailer: X-Checksum\r\n\r\nx", accept: []bool{true}},
	{name: "empty values", raw: cl1 + "X-Empty:\r\nX-Blank: \t \r\n\r\nx", accept: []bool{true}},
	{name: "nil request", methods: []string{""}, raw: goBackendResponse, accept: []bool{true}},
	{name: "POST", methods: []string{http.MethodPost}, raw: goBackendResponse, accept: []bool{true}},
	{name: "lower-case head method", methods: []string{"head"}, raw: goBackendResponse, accept: []bool{true}},
	{name: "body split across packets", raw: goBackendResponse, split: len(goBackendResponse) - 5, accept: []bool{true}},
	{name: "64 fields", raw: withFields(63, "Content-Length: 1\r\n"), accept: []bool{true}},

	// Refused, for net/http to read.
	{name: "HTTP/1.0", raw: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}},
	{name: "HTTP/1.2", raw: "HTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}},
	{name: "lower-case protocol", raw: "http/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "100 Continue first", raw: "HTTP/1.1 100 Continue\r\n\r\n" + goBackendResponse, accept: []bool{false, true}},
	{name: "103 Early Hints first", raw: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + goBackendResponse, accept: []bool{false, true}},
	{name: "101", raw: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", accept: []bool{false}},
	{name: "204", raw: "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", accept: []bool{false}},
	{name: "304 with a length", raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n", accept: []bool{false}},
	{name: "600", raw: "HTTP/1.1 600 Odd\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}},
	{name: "199", raw: "HTTP/1.1 199 Odd\r\nContent-Length: 1\r\n\r\n" + goBackendResponse, accept: []bool{false, true}},
	{name: "signed status", raw: "HTTP/1.1 +20 OK\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}},
	{name: "four-digit status", raw: "HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "two spaces before status", raw: "HTTP/1.1  200 OK\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}},
	{name: "tab after status", raw: "HTTP/1.1 200\tOK\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "non-ASCII reason", raw: "HTTP/1.1 200 Gr\xfc\xdfe\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}},
	{name: "empty line first", raw: "\r\n" + goBackendResponse, accept: []bool{false}, stdErr: true},
	{name: "HEAD", methods: []string{http.MethodHead}, raw: "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n", accept: []bool{false}},
	{name: "HEAD then GET", methods: []string{http.MethodHead, http.MethodGet}, raw: "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n" + goBackendResponse, accept: []bool{false, true}},
	{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", accept: []bool{false}},
	{name: "chunked with Trailer", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n", accept: []bool{false}},
	{name: "chunked and Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", accept: []bool{false}},
	{name: "Transfer-Encoding gzip", raw: cl1 + "Transfer-Encoding: gzip\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "empty Transfer-Encoding", raw: cl1 + "Transfer-Encoding:\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "no Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", accept: []bool{false}},
	{name: "two equal Content-Length", raw: cl1 + "Content-Length: 1\r\n\r\nx", accept: []bool{false}},
	{name: "two different Content-Length", raw: cl1 + "Content-Length: 2\r\n\r\nxx", accept: []bool{false}, stdErr: true},
	{name: "Content-Length list", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "Content-Length +5", raw: "HTTP/1.1 200 OK\r\nContent-Length:  +5\r\n\r\nabcde", accept: []bool{false}, stdErr: true},
	{name: "Content-Length -1", raw: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "Content-Length 5 5", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\nabcde", accept: []bool{false}, stdErr: true},
	{name: "Content-Length hex", raw: "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nabcde", accept: []bool{false}, stdErr: true},
	{name: "empty Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "19-digit Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000\r\n\r\nabc", accept: []bool{false}},
	{name: "Content-Length beyond int64", raw: "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nabc", accept: []bool{false}, stdErr: true},
	{name: "obs-fold", raw: cl1 + "X-Folded: a\r\n b\r\n\r\nx", accept: []bool{false}},
	{name: "obs-fold of Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 0\r\n\r\nxxxxxxxxxx", accept: []bool{false}, stdErr: true},
	{name: "bare LF everywhere", raw: "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", accept: []bool{false}},
	{name: "bare LF ending the status line", raw: "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\nx", accept: []bool{false}},
	{name: "bare LF ending a field", raw: cl1 + "X-A: 1\nX-B: 2\r\n\r\nx", accept: []bool{false}},
	{name: "bare LF ending the head", raw: cl1 + "\nx", accept: []bool{false}},
	{name: "bare CR in the reason", raw: "HTTP/1.1 200 O\rK\r\nContent-Length: 1\r\n\r\nx", accept: []bool{false}},
	{name: "bare CR in a value", raw: cl1 + "X-A: 1\r2\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "space before colon", raw: cl1 + "X-A : 1\r\n\r\nx", accept: []bool{false}},
	{name: "space before the colon of Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx", accept: []bool{false}},
	{name: "field starting with a space", raw: "HTTP/1.1 200 OK\r\n Content-Length: 1\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "non-ASCII value", raw: cl1 + "X-Name: Jos\xe9\r\n\r\nx", accept: []bool{false}},
	{name: "control byte in a value", raw: cl1 + "X-A: 1\x012\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "non-token name", raw: cl1 + "X(A): 1\r\n\r\nx", accept: []bool{false}, stdErr: true},
	{name: "head not fully buffered", raw: goBackendResponse, split: 40, accept: []bool{false}},
	{name: "head cut before its empty line", raw: goBackendResponse, split: strings.Index(goBackendResponse, "\r\n\r\n") + 2, accept: []bool{false}},
	{name: "head cut inside its empty line", raw: goBackendResponse, split: strings.Index(goBackendResponse, "\r\n\r\n") + 3, accept: []bool{false}},
	{name: "65 fields", raw: withFields(64, "Content-Length: 1\r\n"), accept: []bool{false}},
	{name: "head truncated", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", accept: []bool{false}, stdErr: true},
	{name: "status line only", raw: "HTTP/1.1 200 OK\r\n\r\n", accept: []bool{false}},
}

// TestReadSimpleResponseDifferential runs the differential check on
// headCases and checks which responses the fast path reads.
func TestReadSimpleResponseDifferential(t *testing.T) {
	for _, tt := range headCases {
		t.Run(tt.name, func(t *testing.T) {
			res := checkDifferential(t, []byte(tt.raw), tt.split, tt.methods...)
			if !slices.Equal(res.accepted, tt.accept) {
				t.Errorf("fast path read responses %v, want %v", res.accepted, tt.accept)
			}
			if (res.err != nil) != tt.stdErr {
				t.Errorf("net/http error: %v, want one: %v", res.err, tt.stdErr)
			}
		})
	}
}

// TestReadSimpleResponseFields checks the response the fast path reads
// against values written down, for the cases where net/http rewrites the
// header: the differential check alone would pass a fast path and a
// net/http that agree on something else.
func TestReadSimpleResponseFields(t *testing.T) {
	tests := []struct {
		raw        string
		status     string
		code       int
		header     http.Header
		length     int64
		close      bool
		body       string
		wantNoBody bool
	}{
		{
			raw:    goBackendResponse,
			status: "200 OK", code: 200, length: 13, body: "Hello, World!",
			header: http.Header{"Content-Length": {"13"}, "Content-Type": {"text/plain; charset=utf-8"}, "Date": {"Mon, 02 Jan 2006 15:04:05 GMT"}},
		},
		{
			raw:    "HTTP/1.1 404\r\ncontent-length: 2\r\nConnection: keep-alive, close\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\nno",
			status: "404", code: 404, length: 2, close: true, body: "no",
			header: http.Header{"Content-Length": {"2"}, "Set-Cookie": {"a=1", "b=2"}},
		},
		{
			raw:    "HTTP/1.1 503 Try  later \r\nContent-Length: 0\r\nPragma: no-cache\r\nTrailer: X\r\n\r\n",
			status: "503 Try  later ", code: 503, length: 0, wantNoBody: true,
			header: http.Header{"Content-Length": {"0"}, "Pragma": {"no-cache"}, "Cache-Control": {"no-cache"}, "Trailer": {"X"}},
		},
	}
	for _, tt := range tests {
		br := newStreamReader([]byte(tt.raw), 0)
		req := &http.Request{Method: http.MethodGet}
		var resp http.Response
		var body fixedBody
		if !readSimpleResponse(br, req, &resp, http.Header{}, &body) {
			t.Errorf("%q: fast path refused it", tt.raw)
			continue
		}
		got, err := io.ReadAll(resp.Body)
		checks := []struct {
			what      string
			got, want any
		}{
			{"Status", resp.Status, tt.status},
			{"StatusCode", resp.StatusCode, tt.code},
			{"Proto", resp.Proto, "HTTP/1.1"},
			{"Header", resp.Header, tt.header},
			{"ContentLength", resp.ContentLength, tt.length},
			{"Close", resp.Close, tt.close},
			{"Body is http.NoBody", resp.Body == http.NoBody, tt.wantNoBody},
			{"Request", resp.Request == req, true},
			{"body", string(got), tt.body},
			{"body error", err, nil},
			{"left in the reader", br.Buffered(), 0},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%q: %s: got %#v, want %#v", tt.raw, c.what, c.got, c.want)
			}
		}
	}
}

// TestFixedBodyReads checks fixedBody's results read by read, against
// net/http's body for the same bytes: io.EOF with the last bytes,
// io.ErrUnexpectedEOF when the connection ends early and io.EOF after it,
// never a byte past the body, http.ErrBodyReadAfterClose after Close.
func TestFixedBodyReads(t *testing.T) {
	tests := []struct {
		name   string
		length int64
		stream string
		sizes  []int
		want   []readStep
	}{
		{"whole", 5, "hello", []int{10, 10}, []readStep{{"hello", io.EOF}, {"", io.EOF}}},
		{"in parts", 5, "helloNEXT", []int{2, 2, 2, 2}, []readStep{{"he", nil}, {"ll", nil}, {"o", io.EOF}, {"", io.EOF}}},
		{"empty read", 5, "hello", []int{0, 5}, []readStep{{"", nil}, {"hello", io.EOF}}},
		{"truncated", 8, "hello", []int{10, 10, 10}, []readStep{{"hello", nil}, {"", io.ErrUnexpectedEOF}, {"", io.EOF}}},
		{"nothing", 3, "", []int{10, 10}, []readStep{{"", io.ErrUnexpectedEOF}, {"", io.EOF}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tt.stream))
			b := &fixedBody{br: br, remain: tt.length}
			for i, size := range tt.sizes {
				got := readOnce(b, size)
				if got != tt.want[i] {
					t.Errorf("read %d of %d bytes: got %q, %v; want %q, %v", i, size, got.data, got.err, tt.want[i].data, tt.want[i].err)
				}
			}
			rest, _ := io.ReadAll(br)
			if want := tt.stream[min(int(tt.length), len(tt.stream)):]; string(rest) != want {
				t.Errorf("left in the reader: %q, want %q", rest, want)
			}
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if n, err := b.Read(make([]byte, 1)); n != 0 || err != http.ErrBodyReadAfterClose {
				t.Errorf("read after Close: %d, %v; want 0, %v", n, err, http.ErrBodyReadAfterClose)
			}
		})
	}
}

// TestReadSimpleResponseGoBackend runs the differential check on what a
// real net/http backend sends on one keep-alive connection: the answers
// the proxy forwards most.
func TestReadSimpleResponseGoBackend(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 640) // 10 KiB, beyond one buffer
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/text":
			io.WriteString(w, "Hello, World!")
		case "/empty":
		case "/cookies":
			http.SetCookie(w, &http.Cookie{Name: "a", Value: "1", Path: "/", HttpOnly: true})
			http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Pragma", "no-cache")
			io.WriteString(w, `{"ok":true}`)
		case "/stream":
			io.WriteString(w, "part 1")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part 2")
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			io.WriteString(w, big)
		default:
			http.NotFound(w, r)
		}
	})
	requests := []struct {
		method, path string
		accept       bool
	}{
		{"GET", "/text", true},
		{"GET", "/empty", true},
		{"GET", "/cookies", true},
		{"GET", "/missing", true},
		{"HEAD", "/text", false},
		{"GET", "/stream", false},
		{"GET", "/big", true}, // asks to close: the last one
	}
	var sent strings.Builder
	var methods []string
	var want []bool
	for i, r := range requests {
		fmt.Fprintf(&sent, "%s %s HTTP/1.1\r\nHost: backend\r\n", r.method, r.path)
		if i == len(requests)-1 {
			sent.WriteString("Connection: close\r\n")
		}
		sent.WriteString("\r\n")
		methods = append(methods, r.method)
		want = append(want, r.accept)
	}
	raw := exchangeRaw(t, addr, sent.String())
	res := checkDifferential(t, raw, 0, methods...)
	if !slices.Equal(res.accepted, want) || res.err != nil {
		t.Errorf("fast path read responses %v (net/http error %v), want %v; stream %q", res.accepted, res.err, want, abbrev(raw))
	}
}

// exchangeRaw sends requests to addr on one connection and returns all
// the backend answers until it closes the connection.
func exchangeRaw(t *testing.T, addr, requests string) []byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial backend: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	if _, err := io.WriteString(conn, requests); err != nil {
		t.Fatalf("write requests: %v", err)
	}
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read answers: %v", err)
	}
	return raw
}

// TestReadSimpleResponseAllocs checks that the fast path into a kept
// header map, as the proxy reads, costs two allocations: the head string
// and the array of values.
func TestReadSimpleResponseAllocs(t *testing.T) {
	raw := []byte(goBackendResponse)
	rd := bytes.NewReader(raw)
	br := bufio.NewReaderSize(rd, upBufSize)
	req := &http.Request{Method: http.MethodGet}
	var resp http.Response
	var body fixedBody
	h := make(http.Header, 8)
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		rd.Reset(raw)
		br.Reset(rd)
		_, _ = br.Peek(1)
		clear(h)
		if !readSimpleResponse(br, req, &resp, h, &body) {
			t.Fatal("fast path refused the response")
		}
		if n, err := io.ReadFull(resp.Body, buf[:13]); n != 13 || err != nil {
			t.Fatalf("body: %d bytes, %v", n, err)
		}
	})
	if allocs > 2 {
		t.Errorf("allocations per response: got %v, want at most 2 (the head string and the values)", allocs)
	}
}

// FuzzReadSimpleResponse runs the differential check on arbitrary
// streams, cut into two packets anywhere, for GET and HEAD requests.
func FuzzReadSimpleResponse(f *testing.F) {
	for _, tt := range headCases {
		f.Add([]byte(tt.raw), uint16(tt.split))
	}
	f.Fuzz(func(t *testing.T, raw []byte, split uint16) {
		if len(raw) > maxFuzzResponse {
			t.Skip("input too large")
		}
		checkDifferential(t, raw, int(split), http.MethodGet)
		checkDifferential(t, raw, int(split), http.MethodHead)
	})
}

// BenchmarkReadResponse reads a typical answer of a Go backend, head and
// body, with the fast path and with net/http.
func BenchmarkReadResponse(b *testing.B) {
	raw := []byte(goBackendResponse)
	req := &http.Request{Method: http.MethodGet}
	buf := make([]byte, 64)
	run := func(b *testing.B, read func(br *bufio.Reader) io.ReadCloser) {
		rd := bytes.NewReader(raw)
		br := bufio.NewReaderSize(rd, upBufSize)
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			rd.Reset(raw)
			br.Reset(rd)
			_, _ = br.Peek(1)
			body := read(br)
			if n, err := io.ReadFull(body, buf[:13]); n != 13 || err != nil {
				b.Fatalf("body: %d bytes, %v", n, err)
			}
			body.Close()
		}
	}
	b.Run("fast", func(b *testing.B) {
		var resp http.Response
		var body fixedBody
		h := make(http.Header, 8)
		run(b, func(br *bufio.Reader) io.ReadCloser {
			clear(h)
			if !readSimpleResponse(br, req, &resp, h, &body) {
				b.Fatal("fast path refused the response")
			}
			return resp.Body
		})
	})
	b.Run("net/http", func(b *testing.B) {
		run(b, func(br *bufio.Reader) io.ReadCloser {
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				b.Fatal(err)
			}
			return resp.Body
		})
	})
}
