package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"

	"github.com/cutover/cutover/internal/xconnect"
)

// This package imports net/http: its init runs after net/http's read
// GODEBUG with http2xconnect=1 (see package xconnect).
func init() { xconnect.Restore() }

// startProxyH2 serves p over TLS with net/http's HTTP/2 server, as the
// TLS listener does, and returns its base URL and an HTTP/2 client
// transport for it.
func startProxyH2(t *testing.T, h http.Handler) (string, *http2.Transport) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := &http2.Transport{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
	t.Cleanup(tr.CloseIdleConnections)
	return srv.URL, tr
}

// h2WS is a client websocket over an HTTP/2 stream (RFC 8441).
type h2WS struct {
	resp *http.Response
	out  *io.PipeWriter
	in   *bufio.Reader
}

// dialH2 opens a websocket on an HTTP/2 stream to target with the
// extra header fields hdr and returns it with the response. A status
// other than 200 is returned with a nil websocket.
func dialH2(t *testing.T, tr *http2.Transport, target string, hdr http.Header) (*h2WS, *http.Response) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, target, pr)
	if err != nil {
		t.Fatal(err)
	}
	for k, vv := range hdr {
		req.Header[k] = vv
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("extended CONNECT: %v", err)
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Logf("extended CONNECT to %s: %s %q", target, resp.Status, b)
		return nil, resp
	}
	return &h2WS{resp: resp, out: pw, in: bufio.NewReader(resp.Body)}, resp
}

// send writes one masked frame (a client's, RFC 6455 section 5.3).
func (c *h2WS) send(t *testing.T, op byte, payload []byte) {
	t.Helper()
	hdr := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i%4]
	}
	if _, err := c.out.Write(append(hdr, masked...)); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}

// recvFrame reads one unmasked frame (a server's) within waitLimit.
func (c *h2WS) recvFrame() (op byte, payload []byte, err error) {
	type frame struct {
		op  byte
		p   []byte
		err error
	}
	ch := make(chan frame, 1)
	go func() {
		var f frame
		var h [2]byte
		if _, f.err = io.ReadFull(c.in, h[:]); f.err != nil {
			ch <- f
			return
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			_, f.err = io.ReadFull(c.in, b[:])
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			_, f.err = io.ReadFull(c.in, b[:])
			n = binary.BigEndian.Uint64(b[:])
		}
		if f.err == nil {
			f.op, f.p = h[0]&0x0f, make([]byte, n)
			_, f.err = io.ReadFull(c.in, f.p)
		}
		ch <- f
	}()
	select {
	case f := <-ch:
		return f.op, f.p, f.err
	case <-time.After(waitLimit):
		return 0, nil, fmt.Errorf("no frame within %v", waitLimit)
	}
}

func (c *h2WS) echo(t *testing.T, msg string) string {
	t.Helper()
	c.send(t, websocket.TextMessage, []byte(msg))
	op, p, err := c.recvFrame()
	if err != nil || op != websocket.TextMessage {
		t.Fatalf("read echo: opcode %d, %v", op, err)
	}
	return string(p)
}

// recvEnd reads until the stream ends and returns the close frame's
// payload seen on the way, nil when none.
func (c *h2WS) recvEnd(t *testing.T) []byte {
	t.Helper()
	var closeFrame []byte
	for {
		op, p, err := c.recvFrame()
		if err != nil {
			if strings.HasPrefix(err.Error(), "no frame") {
				t.Fatal(err)
			}
			return closeFrame
		}
		if op == websocket.CloseMessage {
			closeFrame = p
		}
	}
}

func TestWebsocketH2Echo(t *testing.T) {
	addr, closed := echoBackend(t, "a")
	rec := &recorder{}
	p := New(Options{App: "shop", AccessLog: rec})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	url, tr := startProxyH2(t, p)

	c, resp := dialH2(t, tr, url+"/ws", http.Header{"X-Request-Id": {"ws-2"}})
	if c == nil {
		t.Fatalf("extended CONNECT: got %s, want 200", resp.Status)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol: got %s, want HTTP/2.0", resp.Proto)
	}
	if got := resp.Header.Get("X-Backend"); got != "a" {
		t.Errorf("handshake X-Backend: got %q, want %q", got, "a")
	}
	if got := resp.Header.Get("X-Request-Id"); got != "ws-2" {
		t.Errorf("handshake X-Request-Id: got %q, want %q", got, "ws-2")
	}
	for _, k := range []string{"Sec-Websocket-Accept", "Upgrade", "Connection"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("handshake %s: got %q, want none over HTTP/2", k, v)
		}
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 100_000)} {
		if got, want := c.echo(t, msg), "a:"+msg; got != want {
			t.Errorf("echo: got %.20q (%d bytes), want %.20q (%d bytes)", got, len(got), want, len(want))
		}
	}
	if got := p.Stats()["r1"].InFlight; got != 1 {
		t.Errorf("in flight with an open websocket: got %d, want 1", got)
	}
	// Counted as an HTTP/1.1 websocket is: one answer, the backend's 101.
	if m := releaseMetrics(t, p, "r1"); m.Status != [6]uint64{0, 1, 0, 0, 0, 0} || m.UpstreamErrors != 0 {
		t.Errorf("metrics: status classes %v, upstream errors %d; want one 1xx, no error", m.Status, m.UpstreamErrors)
	}

	// Closed from the client's side: the backend sees it closed, the
	// stream ends, nothing is left in flight.
	c.send(t, websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	recv(t, closed, "backend to see the websocket closed")
	c.recvEnd(t)
	es := rec.wait(t, 1)
	if e := es[0]; e.Method != "CONNECT" || e.Proto != "HTTP/2.0" || e.Status != 200 || e.Release != "r1" ||
		e.Instance != "a" || e.RequestID != "ws-2" || e.URI != "/ws" || e.Bytes == 0 {
		t.Errorf("access entry: %+v", e)
	}
	if got := p.Stats()["r1"].InFlight; got != 0 {
		t.Errorf("in flight after close: got %d, want 0", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if res := p.Drain(ctx, "r1", 0); res.Cut != 0 {
		t.Errorf("drain after close: got %d cut, want 0", res.Cut)
	}
}

func TestWebsocketH2ClosedByBackend(t *testing.T) {
	// The backend answers one message and closes, with a close frame.
	up := websocket.Upgrader{}
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if _, msg, err := c.ReadMessage(); err == nil {
			c.WriteMessage(websocket.TextMessage, msg)
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
		}
	})
	p := New(Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	url, tr := startProxyH2(t, p)

	c, resp := dialH2(t, tr, url+"/ws", nil)
	if c == nil {
		t.Fatalf("extended CONNECT: got %s, want 200", resp.Status)
	}
	if got := c.echo(t, "once"); got != "once" {
		t.Errorf("echo: got %q, want %q", got, "once")
	}
	if got := c.recvEnd(t); len(got) < 2 || binary.BigEndian.Uint16(got) != websocket.CloseNormalClosure || string(got[2:]) != "bye" {
		t.Errorf("close frame from the backend: got %q, want 1000 bye", got)
	}
	waitFor(t, "websocket to end", func() bool { return p.Stats()["r1"].InFlight == 0 })
}

func TestDrainCutsWebsocketH2(t *testing.T) {
	oldAddr, oldClosed := echoBackend(t, "old")
	newAddr, _ := echoBackend(t, "new")
	p := New(Options{})
	addHealthy(p, "old", "r1", oldAddr)
	p.SetActive("r1")
	url, tr := startProxyH2(t, p)

	c, resp := dialH2(t, tr, url+"/ws", nil)
	if c == nil {
		t.Fatalf("extended CONNECT: got %s, want 200", resp.Status)
	}
	if got := c.echo(t, "hi"); got != "old:hi" {
		t.Fatalf("echo: got %q, want %q", got, "old:hi")
	}
	addHealthy(p, "new", "r2", newAddr)
	p.SetActive("r2")
	// Another websocket on the same connection goes to the new release.
	c2, resp := dialH2(t, tr, url+"/ws", nil)
	if c2 == nil {
		t.Fatalf("extended CONNECT: got %s, want 200", resp.Status)
	}
	if got := c2.echo(t, "hi"); got != "new:hi" {
		t.Errorf("echo on new websocket: got %q, want %q", got, "new:hi")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if res := p.Drain(ctx, "r1", 0); res != (DrainResult{Cut: 1}) {
		t.Errorf("drain: got %+v, want %+v", res, DrainResult{Cut: 1})
	}
	got := c.recvEnd(t)
	if want := closeRetired[2:]; string(got) != string(want) {
		t.Errorf("close frame of the cut websocket: got %q, want %q (1001 going away)", got, want)
	}
	recv(t, oldClosed, "old backend to see its websocket cut")
	if got := c2.echo(t, "still"); got != "new:still" {
		t.Errorf("echo on new websocket after drain: got %q, want %q", got, "new:still")
	}
}

func TestWebsocketH2Handshake(t *testing.T) {
	up := websocket.Upgrader{Subprotocols: []string{"chat"}}
	_, addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("answer") {
		case "ok":
			// The backend sees an HTTP/1.1 handshake: gorilla checks
			// Upgrade, Connection, the version and the key.
			c, err := up.Upgrade(w, r, http.Header{"X-Key-Length": {fmt.Sprint(len(r.Header.Get("Sec-WebSocket-Key")))}})
			if err == nil {
				c.Close()
			}
		case "200":
			io.WriteString(w, "a page, not a websocket")
		case "403":
			http.Error(w, "not you", http.StatusForbidden)
		case "badaccept":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
			brw.Flush()
		}
	})
	p := New(Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	url, tr := startProxyH2(t, p)

	for _, tc := range []struct {
		answer string
		want   int
	}{
		{"ok", http.StatusOK},
		{"403", http.StatusForbidden},
		{"200", http.StatusBadGateway},
		{"badaccept", http.StatusBadGateway},
	} {
		_, resp := dialH2(t, tr, url+"/ws?answer="+tc.answer, http.Header{"Sec-Websocket-Protocol": {"other, chat"}})
		if resp.StatusCode != tc.want {
			t.Errorf("backend answering %s: got %d, want %d", tc.answer, resp.StatusCode, tc.want)
		}
		if tc.answer != "ok" {
			continue
		}
		if got := resp.Header.Get("Sec-Websocket-Protocol"); got != "chat" {
			t.Errorf("subprotocol: got %q, want %q", got, "chat")
		}
		if got := resp.Header.Get("X-Key-Length"); got != "24" {
			t.Errorf("Sec-WebSocket-Key length the backend saw: got %q, want 24 (16 bytes in base64)", got)
		}
	}

	// Any other CONNECT stays refused.
	req, _ := http.NewRequest(http.MethodConnect, url, nil)
	req.URL.Path = ""
	req.Host = "example.com:443"
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("CONNECT: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("plain CONNECT over HTTP/2: got %d, want 405", resp.StatusCode)
	}
	// So does an extended CONNECT of another protocol.
	req, _ = http.NewRequest(http.MethodConnect, url+"/tunnel", nil)
	req.Header.Set(":protocol", "connect-udp")
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("CONNECT connect-udp: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("extended CONNECT of connect-udp: got %d, want 405", resp.StatusCode)
	}
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3's example.
	if got, want := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("acceptKey: got %q, want %q", got, want)
	}
}

func TestWebsocketH2Pinned(t *testing.T) {
	a1, _ := echoBackend(t, "r1")
	a2, _ := echoBackend(t, "r2")
	p := New(Options{Sticky: true})
	addHealthy(p, "a1", "r1", a1)
	addHealthy(p, "a2", "r2", a2)
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	url, tr := startProxyH2(t, p)

	// A new client is pinned to the release that took its websocket, as
	// by a 101 over HTTP/1.1.
	c, resp := dialH2(t, tr, url+"/ws", nil)
	if c == nil {
		t.Fatalf("extended CONNECT: got %s, want 200", resp.Status)
	}
	rel := resp.Header.Get(DefaultVersionHeader)
	if pin := pinOf(resp); pin == "" || pin != rel {
		t.Errorf("pin of a new client: got %q, want the release that answered, %q", pin, rel)
	}
	if got, want := c.echo(t, "x"), rel+":x"; got != want {
		t.Errorf("echo: got %q, want %q", got, want)
	}
	// A pinned client's websockets all go to its release.
	for _, pin := range []string{"r1", "r2", "r1", "r2"} {
		c, resp := dialH2(t, tr, url+"/ws", http.Header{"Cookie": {DefaultCookie + "=" + pin}})
		if c == nil {
			t.Fatalf("extended CONNECT: got %s, want 200", resp.Status)
		}
		if got, want := c.echo(t, "x"), pin+":x"; got != want {
			t.Errorf("websocket of a client pinned to %s: got %q, want %q", pin, got, want)
		}
	}
}

// TestCloseWebsockets: a stopping daemon ends every websocket, of every
// release and over either protocol, with a close frame saying why.
func TestCloseWebsockets(t *testing.T) {
	a1, closed1 := echoBackend(t, "r1")
	a2, closed2 := echoBackend(t, "r2")
	p := New(Options{})
	addHealthy(p, "a1", "r1", a1)
	p.SetActive("r1")
	url, tr := startProxyH2(t, p)
	_, h1url := startHandler(t, p, nil)

	over2, resp := dialH2(t, tr, url+"/ws", nil)
	if over2 == nil {
		t.Fatalf("extended CONNECT: got %s, want 200", resp.Status)
	}
	if got := over2.echo(t, "x"); got != "r1:x" {
		t.Fatalf("echo: got %q", got)
	}
	addHealthy(p, "a2", "r2", a2)
	p.SetActive("r2")
	over1, _ := dialWS(t, h1url)
	if got := echo(t, over1, "x"); got != "r2:x" {
		t.Fatalf("echo: got %q", got)
	}

	if n := p.CloseWebsockets(); n != 2 {
		t.Errorf("CloseWebsockets: got %d, want 2", n)
	}
	want := "\x03\xe9server going away"
	if got := over2.recvEnd(t); string(got) != want {
		t.Errorf("close frame over HTTP/2: got %q, want %q", got, want)
	}
	over1.SetReadDeadline(time.Now().Add(waitLimit))
	_, _, err := over1.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "server going away" {
		t.Errorf("end of the HTTP/1.1 websocket: got %v, want close 1001 server going away", err)
	}
	recv(t, closed1, "r1's backend to see its websocket closed")
	recv(t, closed2, "r2's backend to see its websocket closed")
	waitFor(t, "nothing in flight", func() bool { return p.Stats()["r1"].InFlight == 0 && p.Stats()["r2"].InFlight == 0 })
	if n := p.CloseWebsockets(); n != 0 {
		t.Errorf("CloseWebsockets with none open: got %d, want 0", n)
	}
}

// TestWebsocketH2Preview: the release in preview takes an HTTP/2
// websocket that carries its token, and only such a one.
func TestWebsocketH2Preview(t *testing.T) {
	a1, _ := echoBackend(t, "r1")
	a2, _ := echoBackend(t, "r2")
	p := New(Options{})
	addHealthy(p, "a1", "r1", a1)
	addHealthy(p, "a2", "r2", a2)
	p.SetActive("r1")
	token := NewPreviewToken()
	p.SetPreview("r2", token)
	url, tr := startProxyH2(t, p)
	for _, tc := range []struct {
		hdr  http.Header
		want string
	}{
		{nil, "r1"},
		{http.Header{PreviewHeader: {token}}, "r2"},
		{http.Header{PreviewHeader: {NewPreviewToken()}}, "r1"},
	} {
		c, resp := dialH2(t, tr, url+"/ws", tc.hdr)
		if c == nil {
			t.Fatalf("extended CONNECT: got %s, want 200", resp.Status)
		}
		if got, want := c.echo(t, "x"), tc.want+":x"; got != want {
			t.Errorf("websocket with %v: got %q, want %q", tc.hdr, got, want)
		}
	}
}

// TestDrainCutsWebsocketOfClientNotReading: a client that stopped reading
// while its backend floods it holds the relay in a write to it; Drain's
// cut must still end the websocket (within closeFrameTimeout), over
// HTTP/1.1 and HTTP/2 alike, or the release never drains and, over
// HTTP/2, the stream holds the TLS server's Shutdown.
func TestDrainCutsWebsocketOfClientNotReading(t *testing.T) {
	up := websocket.Upgrader{}
	flood := func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		msg := make([]byte, 64<<10)
		for c.WriteMessage(websocket.BinaryMessage, msg) == nil {
		}
	}
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1.1", true: "h2"}[h2], func(t *testing.T) {
			_, addr := startBackend(t, flood)
			p := New(Options{})
			addHealthy(p, "a", "r1", addr)
			p.SetActive("r1")
			if h2 {
				url, tr := startProxyH2(t, p)
				if c, resp := dialH2(t, tr, url+"/ws", nil); c == nil {
					t.Fatalf("extended CONNECT: got %s, want 200", resp.Status)
				}
			} else {
				_, url := startHandler(t, p, nil)
				dialWS(t, url)
			}
			// Let the backend fill every buffer up to the client.
			time.Sleep(300 * time.Millisecond)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if res := p.Drain(ctx, "r1", 0); res.Cut != 1 {
				t.Errorf("drain: got %+v, want 1 cut", res)
			}
			waitFor(t, "the websocket to end", func() bool { return p.Stats()["r1"].InFlight == 0 })
		})
	}
}

// TestDrainCutsWebsocketH2Repeatedly cuts HTTP/2 websockets over and
// over: goAway's close of the upstream connection ends the stream's
// handler at once, and what goAway does to the stream after that (bound
// its writes) must not touch a response writer net/http has taken back
// (it panicked, about once in twenty cuts).
func TestDrainCutsWebsocketH2Repeatedly(t *testing.T) {
	addr, _ := echoBackend(t, "a")
	p := New(Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")
	url, tr := startProxyH2(t, p)
	for i := range 100 {
		c, resp := dialH2(t, tr, url+"/ws", nil)
		if c == nil {
			t.Fatalf("extended CONNECT %d: got %s, want 200", i, resp.Status)
		}
		if got := c.echo(t, "x"); got != "a:x" {
			t.Fatalf("echo %d: got %q", i, got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if res := p.Drain(ctx, "r1", 0); res.Cut != 1 {
			t.Fatalf("drain %d: got %+v, want 1 cut", i, res)
		}
		c.recvEnd(t)
		waitFor(t, "the websocket to end", func() bool { return p.Stats()["r1"].InFlight == 0 })
	}
}

// TestCloseWebsocketsRefusesLater: once CloseWebsockets ran, a websocket
// asked for on a connection still open (a keep-alive HTTP/1.1 one, an
// HTTP/2 connection before the server's GOAWAY) gets 503 without reaching
// the backend, the HTTP/1.1 connection told to close: otherwise it would
// outlive the close meant for every websocket, and be cut without a close
// frame when the daemon exits, or hold the TLS server's Shutdown until
// its deadline.
func TestCloseWebsocketsRefusesLater(t *testing.T) {
	addr, _ := echoBackend(t, "r1")
	p := New(Options{})
	addHealthy(p, "a1", "r1", addr)
	p.SetActive("r1")
	url, tr := startProxyH2(t, p)
	_, h1url := startHandler(t, p, nil)

	p.CloseWebsockets()
	if c, resp := dialH2(t, tr, url+"/ws", nil); c != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("extended CONNECT after CloseWebsockets: got %s, want 503", resp.Status)
	}
	d := websocket.Dialer{HandshakeTimeout: waitLimit}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(h1url, "http")+"/ws", nil)
	if err == nil {
		c.Close()
		t.Fatalf("HTTP/1.1 websocket after CloseWebsockets: opened, want 503")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
		t.Errorf("HTTP/1.1 websocket after CloseWebsockets: %v (%+v), want 503 with Connection: close", err, resp)
	}
	if got := p.Stats()["r1"].Requests; got != 0 {
		t.Errorf("r1 answered %d websockets after CloseWebsockets, want 0", got)
	}
	if got := p.Metrics().Unserved; got != 2 {
		t.Errorf("unserved: got %d, want 2", got)
	}
}
