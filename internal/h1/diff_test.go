package h1

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The differential tests send the same raw bytes to an h1.Server and to a
// net/http.Server running the same handler, and compare what comes back:
// statuses, bodies, framing, Connection handling, whether the connection
// still serves requests afterwards and which requests the handler saw.
//
// Documented differences that are tolerated: no Content-Type sniffing (the
// handler sets none, and Content-Type is not compared), a body without a
// Content-Length set by the handler is chunked (HTTP/1.1) or delimited by
// the connection's end (HTTP/1.0) where net/http computes a Content-Length,
// Date values, header order, an empty Host header refused with 400, and
// the Host an HTTP/1.0 request without one gets (hostDesc).

// recorder is the handler of the differential tests; it records the
// requests it sees (but the probes of expectOpen).
type recorder struct {
	mu    sync.Mutex
	calls []string
}

// The paths the recorder answers specially; every other path echoes the
// request, its body and trailers in a body with a Content-Length.
const (
	pathProbe = "/probe"    // 200 "probe", not recorded
	pathNoCL  = "/nocl"     // 200 "hello" without Content-Length
	path204   = "/204"      // 204
	path304   = "/304"      // 304
	pathClose = "/close"    // 200 with "Connection: close" set by the handler
	smuggled  = "/smuggled" // the path of every smuggled request
)

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == pathProbe {
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "probe")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	call := r.Method + " " + r.RequestURI + " " + r.Proto + " body=" + strconv.Quote(string(body))
	if err != nil {
		call += " bodyerr"
	}
	rec.mu.Lock()
	rec.calls = append(rec.calls, call)
	rec.mu.Unlock()
	if err != nil {
		w.Header().Set("Connection", "close")
		w.Header().Set("X-Handler-CL", "1")
		w.Header().Set("Content-Length", "10")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "body error")
		return
	}
	switch r.URL.Path {
	case pathNoCL:
		_, _ = io.WriteString(w, "hello")
		return
	case path204:
		w.WriteHeader(http.StatusNoContent)
		return
	case path304:
		w.WriteHeader(http.StatusNotModified)
		return
	case pathClose:
		w.Header().Set("Connection", "close")
	}
	var tr []string
	for k, vv := range r.Trailer {
		tr = append(tr, k+"="+strings.Join(vv, ","))
	}
	sort.Strings(tr)
	out := fmt.Sprintf("%s host=%s trailer=%v", call, hostDesc(r), tr)
	w.Header().Set("X-Handler-CL", "1")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = io.WriteString(w, out)
}

// hostDesc is r.Host as the differential tests compare it: an HTTP/1.0
// request without a Host (or with an empty one) gets the address the
// client connected to from h1 (127.0.0.1:port here) and nothing from
// net/http, a documented difference; both read "(server)".
func hostDesc(r *http.Request) string {
	if r.Host == "" || r.ProtoMinor == 0 && strings.HasPrefix(r.Host, "127.0.0.1:") {
		return "(server)"
	}
	return r.Host
}

func (rec *recorder) snapshot() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.calls...)
}

// step is bytes written in one write, then the answers read: one per
// method listed (interim 1xx answers are collected on the way).
type step struct {
	raw     string
	methods []string
}

// summary is what is compared of one answer.
type summary struct {
	method    string
	interim   []int
	status    int
	proto     string
	body      string
	cl        int64
	chunked   bool
	close     bool
	conn      string // the Connection header
	handlerCL bool   // the handler set the Content-Length
	trailer   http.Header
	header    http.Header
}

func (s summary) String() string {
	framing := "until close"
	if s.method == "HEAD" {
		framing = "HEAD, Content-Length " + strconv.FormatInt(s.cl, 10)
	}
	switch {
	case s.method == "HEAD":
	case s.chunked:
		framing = "chunked"
	case s.cl >= 0:
		framing = "Content-Length " + strconv.FormatInt(s.cl, 10)
	}
	return fmt.Sprintf("{%v%d %s, %s, close=%v, Connection=%q, body=%q}", interimString(s.interim), s.status, s.proto, framing, s.close, s.conn, s.body)
}

func interimString(codes []int) string {
	var b strings.Builder
	for _, c := range codes {
		fmt.Fprintf(&b, "%d+", c)
	}
	return b.String()
}

// outcome is what a server did with a whole exchange.
type outcome struct {
	resps []summary
	err   error // reading the answers failed
	// extra are answers that came after those expected and before the
	// probe's: to requests the client did not mean to send.
	extra []summary
	open  bool // a probe request sent after the answers was answered
	calls []string
}

func (o outcome) String() string {
	var b strings.Builder
	for _, r := range o.resps {
		b.WriteString(r.String())
		b.WriteString(" ")
	}
	for _, r := range o.extra {
		b.WriteString("extra answer ")
		b.WriteString(r.String())
		b.WriteString(" ")
	}
	if o.err != nil {
		fmt.Fprintf(&b, "read error: %v; ", o.err)
	}
	fmt.Fprintf(&b, "open afterwards=%v; handler saw %q", o.open, o.calls)
	return b.String()
}

// exchange runs steps on a new connection to addr, then probes whether the
// connection still serves requests.
func exchange(t *testing.T, addr string, rec *recorder, steps []step) outcome {
	t.Helper()
	var o outcome
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	br := bufio.NewReader(c)
	read := func(method string, into *[]summary) error {
		var interim []int
		for {
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				return err
			}
			if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
				interim = append(interim, resp.StatusCode)
				continue
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return fmt.Errorf("reading the body of %s: %w", resp.Status, err)
			}
			s := summary{
				method:    method,
				interim:   interim,
				status:    resp.StatusCode,
				proto:     resp.Proto,
				body:      string(body),
				cl:        resp.ContentLength,
				chunked:   slices.Contains(resp.TransferEncoding, "chunked"),
				close:     resp.Close,
				conn:      strings.Join(resp.Header.Values("Connection"), ","),
				handlerCL: resp.Header.Get("X-Handler-CL") != "",
				trailer:   resp.Trailer,
				header:    resp.Header,
			}
			*into = append(*into, s)
			return nil
		}
	}
steps:
	for _, s := range steps {
		if _, err := io.WriteString(c, s.raw); err != nil {
			o.err = fmt.Errorf("writing %q: %w", s.raw, err)
			break
		}
		for _, m := range s.methods {
			if err := read(m, &o.resps); err != nil {
				o.err = err
				break steps
			}
		}
	}
	if o.err == nil {
		// A connection that is still open answers a probe; one the
		// server closed gives EOF or a reset.
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		// Answers to requests the client did not mean to send (smuggled)
		// come before the probe's.
		if _, err := io.WriteString(c, "GET "+pathProbe+" HTTP/1.1\r\nHost: probe\r\n\r\n"); err == nil {
			for range 10 {
				err := read("GET", &o.extra)
				if err != nil {
					if isTimeout(err) {
						o.err = fmt.Errorf("the connection neither answered a probe nor was closed within 2s")
					}
					break
				}
				last := o.extra[len(o.extra)-1]
				if last.status == http.StatusOK && last.body == "probe" {
					o.extra = o.extra[:len(o.extra)-1]
					o.open = true
					break
				}
			}
		}
	}
	o.calls = rec.snapshot()
	return o
}

// allowance lists the documented differences a case may show.
type allowance int

const (
	// allowNoCL10: an HTTP/1.0 keep-alive request answered without a
	// Content-Length by the handler: net/http computes one and keeps the
	// connection, h1 delimits the body by closing it.
	allowNoCL10 allowance = 1 << iota
	// allowEmptyHost: h1 refuses an empty Host header that net/http takes.
	allowEmptyHost
	// allowStricter: h1 closes a connection net/http keeps, as RFC 9112
	// requires (net/http then serves what may be a smuggled request).
	allowStricter
)

type diffCase struct {
	name  string
	steps []step
	// want is the statuses h1 must answer, in order.
	want []int
	// open tells whether the connection must still serve requests after
	// the answers; when false the server must have closed it.
	open bool
	// calls is how many requests the handler must see on h1.
	calls int
	allow allowance
	// check, when set, checks more of h1's outcome.
	check func(t *testing.T, h1 outcome)
}

func one(raw string, methods ...string) []step {
	if len(methods) == 0 {
		methods = []string{"GET"}
	}
	return []step{{raw: raw, methods: methods}}
}

func rep(s step, n int) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func runDiffCases(t *testing.T, cases []diffCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runDiffCase(t, c)
		})
	}
}

func runDiffCase(t *testing.T, c diffCase) {
	h1rec, stdrec := &recorder{}, &recorder{}
	h1addr := startH1(t, &Server{Handler: h1rec, MaxHeaderBytes: maxHeaderBytesForTests})
	stdaddr := startStd(t, stdrec, maxHeaderBytesForTests)
	var h1, std outcome
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h1 = exchange(t, h1addr, h1rec, c.steps) }()
	go func() { defer wg.Done(); std = exchange(t, stdaddr, stdrec, c.steps) }()
	wg.Wait()

	sent := make([]string, len(c.steps))
	for i, s := range c.steps {
		sent[i] = abbrev(s.raw)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sent %q\n  h1:       %v\n  net/http: %v", sent, h1, std)
		}
	})
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("sent %q: "+format, append([]any{sent}, args...)...)
	}

	// What h1 must do, whatever net/http does.
	if h1.err != nil {
		fail("h1: %v", h1.err)
	}
	var got []int
	for _, r := range h1.resps {
		got = append(got, r.status)
	}
	if !slices.Equal(got, c.want) {
		fail("h1 answered %v, want %v", got, c.want)
	}
	if h1.open != c.open {
		fail("h1: connection open afterwards = %v, want %v", h1.open, c.open)
	}
	if len(h1.calls) != c.calls {
		fail("h1 handler saw %d requests %q, want %d", len(h1.calls), h1.calls, c.calls)
	}
	for _, call := range h1.calls {
		if strings.Contains(call, smuggled) {
			fail("h1 handler saw the smuggled request: %q", call)
		}
	}
	for _, r := range h1.resps {
		checkFraming(t, sent, r)
	}
	if c.check != nil && len(h1.resps) == len(c.want) && len(h1.calls) == c.calls {
		c.check(t, h1)
	}

	// What h1 must share with net/http.
	if std.err != nil {
		fail("net/http: %v (the case itself is wrong)", std.err)
	}
	if c.allow&(allowEmptyHost|allowStricter) != 0 {
		return
	}
	if !slices.Equal(h1.calls, std.calls) {
		fail("handler calls differ:\n  h1:       %q\n  net/http: %q", h1.calls, std.calls)
	}
	if len(h1.resps) != len(std.resps) {
		fail("h1 gave %d answers, net/http %d", len(h1.resps), len(std.resps))
		return
	}
	for i := range h1.resps {
		a, b := h1.resps[i], std.resps[i]
		if a.status != b.status || a.body != b.body || !slices.Equal(a.interim, b.interim) {
			fail("answer %d differs:\n  h1:       %v\n  net/http: %v", i, a, b)
		}
		if c.allow&allowNoCL10 == 0 && a.close != b.close {
			fail("answer %d: h1 close=%v (Connection %q), net/http close=%v (Connection %q)", i, a.close, a.conn, b.close, b.conn)
		}
		if a.handlerCL && a.cl != b.cl {
			fail("answer %d: Content-Length set by the handler: h1 sent %d, net/http %d", i, a.cl, b.cl)
		}
		if !equalTrailers(a.trailer, b.trailer) {
			fail("answer %d: trailers differ: h1 %v, net/http %v", i, a.trailer, b.trailer)
		}
	}
	if c.allow&allowNoCL10 == 0 && h1.open != std.open {
		fail("connection open afterwards: h1 %v, net/http %v", h1.open, std.open)
	}
}

// checkFraming checks an h1 answer's framing against the documented rules:
// the handler's Content-Length when it set one; otherwise chunked for
// HTTP/1.1, the connection's end for HTTP/1.0; nothing for answers without
// a body; a Date always.
func checkFraming(t *testing.T, sent []string, r summary) {
	t.Helper()
	if r.status >= 400 && !r.handlerCL {
		// A refusal written by the server itself, as net/http's: no Date.
		return
	}
	noBody := r.status == 204 || r.status == 304 || r.body == "" && !r.chunked && r.cl <= 0
	switch {
	case r.method == "HEAD":
		if r.body != "" || r.chunked {
			t.Errorf("sent %q: h1 answer to HEAD %v has a body", sent, r)
		}
	case r.handlerCL:
		if r.cl != int64(len(r.body)) || r.chunked {
			t.Errorf("sent %q: h1 answer %v: the handler set Content-Length %d", sent, r, len(r.body))
		}
	case noBody:
	case r.proto == "HTTP/1.1" && !r.chunked && r.status < 400:
		t.Errorf("sent %q: h1 HTTP/1.1 answer %v without a handler's Content-Length is not chunked", sent, r)
	}
	if r.header.Get("Date") == "" {
		t.Errorf("sent %q: h1 answer %v has no Date header", sent, r)
	}
	if r.header.Get("Content-Type") != "" {
		t.Errorf("sent %q: h1 answer %v has a Content-Type %q the handler did not set", sent, r, r.header.Get("Content-Type"))
	}
}

func equalTrailers(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
