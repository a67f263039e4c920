package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bodyBackend counts what the app saw of request bodies.
type bodyBackend struct {
	addr string
	// reached counts the requests that reached the app; complete those
	// whose body it read whole; failed those whose body read failed.
	reached, complete, failed atomic.Int64
}

// startBodyBackend starts a backend that reads each request body to its
// end and answers 200 with its length, counting what it saw.
func startBodyBackend(t testing.TB) *bodyBackend {
	t.Helper()
	bb := new(bodyBackend)
	_, bb.addr = startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		bb.reached.Add(1)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			bb.failed.Add(1)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		bb.complete.Add(1)
		io.WriteString(w, strconv.FormatInt(n, 10))
	})
	return bb
}

// rawClient is a client speaking HTTP/1.1 by hand on one connection.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t testing.TB, url string) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), waitLimit)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	return &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// status reads the answer's head and body and returns its status, or 0
// when the connection ended without one, and whether it announced the
// connection's end.
func (c *rawClient) status() (status int, closing bool) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Close
}

// bodyCase is a client sending a request body the proxy must refuse.
type bodyCase struct {
	name string
	// head is sent first, then body; stall leaves the client silent after
	// it, halfClose shuts its sending side.
	head, body       string
	stall, halfClose bool
	want             int
}

const chunkedHead = "POST /upload HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n"

func lengthHead(n int) string {
	return "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: " + strconv.Itoa(n) + "\r\n\r\n"
}

var badBodies = []bodyCase{
	{name: "bad chunk size", head: chunkedHead, body: "5\r\nhello\r\nzz\r\n", want: http.StatusBadRequest},
	{name: "chunk size overflow", head: chunkedHead, body: "5\r\nhello\r\nfffffffffffffffffffff\r\n", want: http.StatusBadRequest},
	{name: "missing CRLF after chunk", head: chunkedHead, body: "5\r\nhelloXX3\r\nabc\r\n", want: http.StatusBadRequest},
	{name: "cut short, client half-closed", head: lengthHead(100), body: strings.Repeat("a", 40), halfClose: true, want: http.StatusBadRequest},
	{name: "stall mid chunk", head: chunkedHead, body: "10\r\nhello", stall: true, want: http.StatusRequestTimeout},
	{name: "stall between chunks", head: chunkedHead, body: "5\r\nhello\r\n", stall: true, want: http.StatusRequestTimeout},
	{name: "stall mid content-length", head: lengthHead(100), body: strings.Repeat("a", 50), stall: true, want: http.StatusRequestTimeout},
	{name: "stall before body", head: lengthHead(100), stall: true, want: http.StatusRequestTimeout},
}

// TestMalformedBodiesAnsweredAtOnce sends each malformed or stalled body
// by hand: the client gets 400 as soon as the bad bytes arrive (408 after
// ClientBodyTimeout for a stall), the app never sees a complete request
// (one it received is aborted, so its read fails), and the release's
// window counts no error: the fault is the client's.
func TestMalformedBodiesAnsweredAtOnce(t *testing.T) {
	for _, mode := range bodyModes {
		for _, tc := range badBodies {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				testBadBody(t, mode.opts, tc)
			})
		}
	}
}

// bodyModes are the ways the proxy may handle a request body.
var bodyModes = []struct {
	name string
	opts Options
}{
	{"streamed", Options{StreamRequestBodies: true}},
	{"buffered", Options{}},
	// Past 16 bytes in memory, the body goes to a file.
	{"buffered in a file", Options{RequestBufferMemory: 16}},
	// No file can be made: past 16 bytes, the body streams.
	{"buffered, no file", Options{RequestBufferMemory: 16, BodyTempDir: "/dev/null/bodies"}},
}

// bodyTimeout is the ClientBodyTimeout of the body tests.
const bodyTimeout = 300 * time.Millisecond

func testBadBody(t *testing.T, opts Options, tc bodyCase) {
	bb := startBodyBackend(t)
	// A response header timeout well above any expected answer: waiting
	// for it is the failure this test guards against.
	opts.ResponseHeaderTimeout = 3 * time.Second
	opts.ClientBodyTimeout = bodyTimeout
	if opts.BodyTempDir == "" {
		opts.BodyTempDir = t.TempDir()
	}
	p, url := startProxy(t, opts)
	addHealthy(p, "a", "r1", bb.addr)
	p.SetActive("r1")

	c := dialRaw(t, url)
	c.send(tc.head)
	if tc.body != "" {
		c.send(tc.body)
	}
	sent := time.Now()
	if tc.halfClose {
		if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatalf("half-close: %v", err)
		}
	}
	status, closing := c.status()
	took := time.Since(sent)
	if status != tc.want {
		t.Errorf("status: got %d, want %d (after %v)", status, tc.want, took)
	}
	limit := 500 * time.Millisecond
	if tc.stall {
		limit += bodyTimeout
		if took < bodyTimeout-bodyTimeout/8 {
			t.Errorf("answered after %v, before the body timeout of %v", took, bodyTimeout)
		}
	}
	if took > limit {
		t.Errorf("answered after %v, want under %v", took, limit)
	}
	if status != 0 && !closing {
		t.Errorf("answer without Connection: close: the request's framing is lost")
	}
	// The app may have received the start of the request; it must see it
	// fail, never complete.
	deadline := time.Now().Add(waitLimit)
	for bb.failed.Load() != bb.reached.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := bb.complete.Load(); n != 0 {
		t.Errorf("the app read %d complete request(s), want none", n)
	}
	if r, f := bb.reached.Load(), bb.failed.Load(); r != f {
		t.Errorf("the app received %d request(s) and saw %d fail, want every one to fail", r, f)
	}
	buffered := !opts.StreamRequestBodies && strings.Contains(tc.head, "Content-Length") && opts.BodyTempDir != "/dev/null/bodies"
	if n := bb.reached.Load(); buffered && n != 0 {
		t.Errorf("the app received %d request(s), want none: the body was to be buffered first", n)
	}
	waitIdle(t, p, "r1")
	if ws := p.Window("r1", time.Minute); ws.Errors != 0 || ws.ConnErrors != 0 {
		t.Errorf("window: got %d errors and %d conn errors, want none (the client's fault)", ws.Errors, ws.ConnErrors)
	}
	if st := p.Stats()["r1"]; st.Status5xx != 0 || st.ConnErrors != 0 {
		t.Errorf("stats: got %d 5xx and %d conn errors, want none", st.Status5xx, st.ConnErrors)
	}
}
