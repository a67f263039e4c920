package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// readSlow reads the request at the start of raw as a connection does
// without the fast path: http.ReadRequest and readRequest's checks. left
// is the number of bytes of raw not consumed.
func readSlow(raw []byte) (req *http.Request, mustClose bool, left int, err error) {
	src := bytes.NewReader(raw)
	c := &conn{s: &Server{slowOnly: true}, remoteAddr: "192.0.2.1:1234"}
	c.r.rd = src
	c.r.remain = DefaultMaxHeaderBytes + bufSize
	c.br = bufio.NewReaderSize(&c.r, bufSize)
	if _, err := c.br.Peek(1); err != nil {
		return nil, false, 0, err
	}
	req, mustClose, err = c.readRequest()
	return req, mustClose, c.br.Buffered() + src.Len(), err
}

// checkSimple checks that when parseSimpleRequest accepts raw, the slow
// path reads the same request, consuming the same bytes, with nothing
// that would make the connection close.
func checkSimple(t *testing.T, raw string) (accepted bool) {
	t.Helper()
	var fast http.Request
	n, ok := parseSimpleRequest([]byte(raw), &fast, http.Header{}, new(url.URL))
	if !ok {
		return false
	}
	slow, mustClose, left, err := readSlow([]byte(raw))
	if err != nil {
		t.Fatalf("fast path accepted %q, net/http refuses it: %v", raw, err)
	}
	if mustClose {
		t.Fatalf("fast path accepted %q, the slow path closes the connection after it", raw)
	}
	if len(raw)-n != left {
		t.Fatalf("%q: fast path consumed %d bytes, the slow path %d", raw, n, len(raw)-left)
	}
	if diff := requestDiff(&fast, slow); diff != "" {
		t.Fatalf("%q: fast and slow paths differ in %s", raw, diff)
	}
	return true
}

// requestDiff names the first field in which a and b differ, "" when
// they agree on every field a server fills.
func requestDiff(a, b *http.Request) string {
	switch {
	case a.Method != b.Method:
		return "Method " + a.Method + " / " + b.Method
	case !reflect.DeepEqual(a.URL, b.URL):
		return "URL " + a.URL.String() + " / " + b.URL.String()
	case a.Proto != b.Proto || a.ProtoMajor != b.ProtoMajor || a.ProtoMinor != b.ProtoMinor:
		return "Proto " + a.Proto + " / " + b.Proto
	case !reflect.DeepEqual(a.Header, b.Header):
		return "Header"
	case (a.Body == http.NoBody) != (b.Body == http.NoBody):
		return "Body"
	case a.ContentLength != b.ContentLength:
		return "ContentLength"
	case !reflect.DeepEqual(a.TransferEncoding, b.TransferEncoding):
		return "TransferEncoding"
	case a.Close != b.Close:
		return "Close"
	case !reflect.DeepEqual(a.Trailer, b.Trailer):
		return "Trailer"
	case a.Host != b.Host:
		return "Host " + a.Host + " / " + b.Host
	case a.RequestURI != b.RequestURI:
		return "RequestURI"
	case a.Form != nil || a.PostForm != nil || a.MultipartForm != nil || a.TLS != nil || a.Response != nil || a.GetBody != nil:
		return "a field ReadRequest leaves unset"
	}
	return ""
}

// simpleSeeds are requests as clients send them, for the fast path to
// take, and near misses for it to leave to net/http.
var simpleSeeds = []string{
	"GET / HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n\r\n",
	"GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
	"GET /assets/app.css HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive\r\n" +
		"sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\nsec-ch-ua-mobile: ?0\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
		"Accept: text/css,*/*;q=0.1\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: no-cors\r\n" +
		"Referer: https://shop.example/\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n" +
		"Accept-Language: en-US,en;q=0.9\r\nCookie: _session=abc; cutover_version=r2\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\nCache-Control: max-age=0\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: a\r\nx-custom-thing: 1\r\nX-CUSTOM-THING: 2\r\nx_under: 3\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blanks: \t v \t\r\n\r\n",
	"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	"DELETE /items/7 HTTP/1.1\r\nHost: a\r\n\r\n",
	"OPTIONS /x HTTP/1.1\r\nHost: a\r\nOrigin: https://b\r\n\r\n",
	"get / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nTrailer: X\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET //x/../y HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a?? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /?a=1?b=%zz&c HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a:b/$&+,;=@~_.-/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a%20b/c%2Fd HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a!b*'(c) HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a[b]|c\\ HTTP/1.1\r\nHost: a\r\n\r\n",
	// Near misses: each goes to net/http.
	"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello",
	"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	"GET / x HTTP/1.1\r\nHost: a\r\n\r\n",
	"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n",
	"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",
}

// TestSimpleRequestMatchesNetHTTP runs the differential check on the
// seeds and checks which of them the fast path takes.
func TestSimpleRequestMatchesNetHTTP(t *testing.T) {
	taken := 0
	for _, raw := range simpleSeeds {
		if checkSimple(t, raw) {
			taken++
		}
	}
	// The first 28 seeds are requests the fast path is for.
	for _, raw := range simpleSeeds[:28] {
		var r http.Request
		if _, ok := parseSimpleRequest([]byte(raw), &r, http.Header{}, new(url.URL)); !ok {
			t.Errorf("fast path refused %q", raw)
		}
	}
	for _, raw := range simpleSeeds[28:] {
		var r http.Request
		if _, ok := parseSimpleRequest([]byte(raw), &r, http.Header{}, new(url.URL)); ok {
			t.Errorf("fast path took %q, which is for net/http", raw)
		}
	}
	if taken != 28 {
		t.Errorf("fast path took %d seeds, want 28", taken)
	}
}

// TestSimpleRequestFieldLimit checks that a block of more than 64 fields
// goes to net/http, and one of 64 does not.
func TestSimpleRequestFieldLimit(t *testing.T) {
	block := func(n int) string {
		var b strings.Builder
		b.WriteString("GET / HTTP/1.1\r\nHost: a\r\n")
		for i := 1; i < n; i++ {
			b.WriteString("X-F: v\r\n")
		}
		b.WriteString("\r\n")
		return b.String()
	}
	if !checkSimple(t, block(64)) {
		t.Error("fast path refused 64 fields")
	}
	var r http.Request
	if _, ok := parseSimpleRequest([]byte(block(65)), &r, http.Header{}, new(url.URL)); ok {
		t.Error("fast path took 65 fields")
	}
}

// TestSimpleRequestAllocs bounds the allocations of the fast path for a
// browser's request of 12 fields, into the connection's kept header map
// and URL: the head's string and the values.
func TestSimpleRequestAllocs(t *testing.T) {
	raw := []byte(simpleSeeds[2])
	var r http.Request
	var u url.URL
	h := make(http.Header)
	allocs := testing.AllocsPerRun(200, func() {
		clear(h)
		if _, ok := parseSimpleRequest(raw, &r, h, &u); !ok {
			t.Fatal("refused")
		}
	})
	if allocs > 2 {
		t.Errorf("%v allocations per request, want at most 2", allocs)
	}
}

// TestParseFieldsMatchesTextproto compares ParseFieldsInto with
// textproto.ReadMIMEHeader on blocks it accepts.
func TestParseFieldsMatchesTextproto(t *testing.T) {
	for _, s := range []string{
		"",
		"A: b\r\n",
		"a: b\r\nA: c\r\nx-y-z: 1\r\nX-Y-Z: 2\r\ncontent-type: text/plain\r\n",
		"WWW-AUTHENTICATE: x\r\nETag: \"1\"\r\nX_Y: z\r\n!#$%&'*+-.^_`|~09az: v\r\n",
		"A:\r\nB: \t\r\nC:\tc d\t \r\n",
		strings.Repeat("Long-Name-", 10) + ": v\r\n",
	} {
		if !checkFields(t, s) {
			t.Errorf("ParseFieldsInto refused %q", s)
		}
	}
	for _, s := range []string{"A: b", "A: b\n", "A b\r\n", "A : b\r\n", " A: b\r\n", "A: b\r\n c\r\n", ": b\r\n", "A: \x7f\r\n", "A: é\r\n", "A: b\rc\r\n"} {
		if ParseFieldsInto(http.Header{}, s) {
			t.Errorf("ParseFieldsInto took %q", s)
		}
	}
}

// checkFields checks that when ParseFieldsInto accepts s, ReadMIMEHeader
// reads the same header from it.
func checkFields(t *testing.T, s string) bool {
	t.Helper()
	h := http.Header{}
	if !ParseFieldsInto(h, s) {
		return false
	}
	want, err := textproto.NewReader(bufio.NewReader(strings.NewReader(s + "\r\n"))).ReadMIMEHeader()
	if err != nil {
		t.Fatalf("ParseFieldsInto accepted %q, textproto refuses it: %v", s, err)
	}
	if !reflect.DeepEqual(h, http.Header(want)) {
		t.Fatalf("%q: ParseFieldsInto read %q, textproto %q", s, h, want)
	}
	return true
}

// FuzzSimpleRequest checks on arbitrary bytes that the fast path never
// reads a request differently from net/http and readRequest's checks.
func FuzzSimpleRequest(f *testing.F) {
	for _, s := range simpleSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > bufSize {
			return
		}
		checkSimple(t, raw)
		if i := strings.Index(raw, "\r\n"); i >= 0 {
			if j := strings.Index(raw, "\r\n\r\n"); j > i {
				checkFields(t, raw[i+2:j+2])
			}
		}
	})
}

// FuzzParseTarget checks parseTarget against url.ParseRequestURI on any
// target of the form the fast path reads.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"/", "/a?", "/a??", "/a?b=c", "/a%20b", "//x", "/a#b", "/a b", "/é", "/a:b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if target == "" || target[0] != '/' {
			return
		}
		for i := 0; i < len(target); i++ {
			if c := target[i]; c <= ' ' || c >= 0x7f {
				return
			}
		}
		got, ok := parseTarget(target, new(url.URL))
		want, err := url.ParseRequestURI(target)
		if ok != (err == nil) {
			t.Fatalf("%q: parseTarget ok=%v, ParseRequestURI err=%v", target, ok, err)
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: parseTarget %#v, ParseRequestURI %#v", target, got, want)
		}
	})
}

// TestParseFieldsInto checks that a map reused from block to block reads
// each as a fresh map does, without allocating the map again.
func TestParseFieldsInto(t *testing.T) {
	h := make(http.Header, 8)
	for _, s := range []string{"A: 1\r\nB: 2\r\n", "", "b: 3\r\nB: 4\r\nContent-Type: x\r\n"} {
		clear(h)
		if !ParseFieldsInto(h, s) {
			t.Fatalf("ParseFieldsInto refused %q", s)
		}
		want := http.Header{}
		ParseFieldsInto(want, s)
		if !reflect.DeepEqual(h, want) {
			t.Errorf("%q: read %q into a kept map, %q into a fresh one", s, h, want)
		}
	}
	clear(h)
	if ParseFieldsInto(h, "A: 1\r\nB 2\r\n") {
		t.Error("ParseFieldsInto took a line without a colon")
	}
	block := "Date: Sun, 22 Nov 2026 14:00:00 GMT\r\nContent-Length: 13\r\nContent-Type: text/plain; charset=utf-8\r\n"
	allocs := testing.AllocsPerRun(100, func() {
		clear(h)
		ParseFieldsInto(h, block)
	})
	if allocs > 1 {
		t.Errorf("%v allocations per block into a kept map, want 1 (the values)", allocs)
	}
}

// TestSimpleRequestHeaderNotCarriedOver checks that the connection's kept
// header map holds each request's fields only: requests read by the fast
// path, and after one it began and left to net/http.
func TestSimpleRequestHeaderNotCarriedOver(t *testing.T) {
	seen := make(chan http.Header, 3)
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		seen <- r.Header.Clone()
	}))
	c := dial(t, addr)
	reqs := []string{
		"GET /1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n",
		"POST /2 HTTP/1.1\r\nHost: x\r\nX-B: 2\r\nContent-Length: 2\r\n\r\nok",
		"GET /3 HTTP/1.1\r\nHost: x\r\nX-C: 3\r\n\r\n",
	}
	want := []http.Header{
		{"X-A": {"1"}},
		{"X-B": {"2"}, "Content-Length": {"2"}},
		{"X-C": {"3"}},
	}
	for i, req := range reqs {
		c.write(req)
		c.mustResponse(strings.Fields(req)[0], req)
		if got := recv(t, seen, "the handler"); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("request %d: handler saw header %v, want %v", i+1, got, want[i])
		}
	}
}

// TestSimpleRequestURLNotCarriedOver: the connection's kept URL is
// filled anew for each request, and a target that needs the full parser
// gets its own.
func TestSimpleRequestURLNotCarriedOver(t *testing.T) {
	seen := make(chan url.URL, 1)
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- *r.URL
	}))
	c := dial(t, addr)
	for _, target := range []string{"/a?x=1", "/b", "/c?", "/%7Ed?y=2", "/e", "/f?#"} {
		req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatal(err)
		}
		if got := recv(t, seen, "the handler"); got != *want {
			t.Errorf("target %q: handler saw URL %#v, want %#v", target, got, *want)
		}
	}
}

// BenchmarkReadRequest reads a browser's GET (12 fields) with the fast
// path, into a kept header map as a connection does, and with
// http.ReadRequest, side by side.
func BenchmarkReadRequest(b *testing.B) {
	raw := []byte(simpleSeeds[2])
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var r http.Request
		var u url.URL
		h := make(http.Header)
		for b.Loop() {
			clear(h)
			if _, ok := parseSimpleRequest(raw, &r, h, &u); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		rd := bytes.NewReader(raw)
		br := bufio.NewReaderSize(rd, bufSize)
		for b.Loop() {
			rd.Reset(raw)
			br.Reset(rd)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestServeAllocs bounds what the server allocates for a whole keep-alive
// request read by the fast path, from its head to its answer, with a
// handler that allocates nothing: the client reads into a kept buffer, so
// every allocation counted is the server's.
func TestServeAllocs(t *testing.T) {
	body := []byte("Hello, World!")
	ctype, clen := []string{"text/plain"}, []string{"13"}
	addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = ctype
		w.Header()["Content-Length"] = clen
		_, _ = w.Write(body)
	}))
	c := dial(t, addr)
	request := []byte("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.c.Write(request); err != nil {
			t.Fatal(err)
		}
		// The answer ends with the body; its head fits in one read or two.
		got := 0
		for got == 0 || !bytes.HasSuffix(buf[:got], body) {
			n, err := c.c.Read(buf[got:])
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	roundTrip()
	allocs := testing.AllocsPerRun(500, roundTrip)
	// The head as a string, the header values, the request context and its
	// stop function.
	t.Logf("%v allocations per request", allocs)
	if allocs > 4 {
		t.Errorf("%v allocations per request, want at most 4", allocs)
	}
}
