package proxy

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// isUpgrade reports whether a request asks to switch to the websocket
// protocol. Other upgrades are forwarded as plain requests, without their
// Upgrade header.
func isUpgrade(h http.Header) bool {
	return tokenListed(h["Upgrade"], "websocket") && tokenListed(h["Connection"], "upgrade")
}

// isExtendedConnect reports whether r opens a websocket on an HTTP/2
// stream (RFC 8441): CONNECT with the :protocol pseudo-header
// "websocket", which net/http's server passes in the header map under
// ":protocol" (and accepts only when the process runs with
// GODEBUG=http2xconnect=1, see package xconnect).
func isExtendedConnect(r *http.Request) bool {
	v := r.Header[":protocol"]
	return r.ProtoMajor == 2 && len(v) == 1 && strings.EqualFold(v[0], "websocket")
}

// serveUpgrade forwards a websocket handshake on a connection of its own to
// the backend and, once the backend switches protocols, splices the client
// and backend connections together until either side closes or Drain cuts
// them. The websocket counts as in flight on its backend all along.
//
// The client's side is either its HTTP/1.1 connection, hijacked after
// the backend's 101 is relayed, or the HTTP/2 stream of an extended
// CONNECT (RFC 8441, h2 set): the backend, which speaks HTTP/1.1 only,
// gets a GET upgrade of its own with a fresh Sec-WebSocket-Key; its 101
// becomes the client's 200, and the stream's request body (client to
// app) and response body (app to client, flushed as it comes) carry the
// websocket's bytes.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, r *http.Request, idv []string, sel *selection, x *exchange) {
	ctx := r.Context()
	// admit lets no other CONNECT through than an extended one.
	h2 := r.Method == http.MethodConnect
	hj, ok := w.(http.Hijacker)
	if !ok && !h2 {
		p.writeError(w, http.StatusHTTPVersionNotSupported, idv, "cutover: websockets need HTTP/1.1\n")
		return
	}
	if p.wsClosed.Load() {
		// The daemon stops (CloseWebsockets): a websocket opened now
		// would be cut without a close frame as it exits.
		p.unserved.Add(1)
		if !h2 {
			w.Header().Set("Connection", "close")
		}
		p.writeError(w, http.StatusServiceUnavailable, idv, "cutover: this server is stopping and opens no more websockets; open it again (on a new connection, which the next server takes)\n")
		return
	}
	tg, err := p.acquire(ctx, sel)
	held := tg.held
	if err != nil {
		x.holdEnded(held)
		p.acquireFailed(ctx, w, r, idv, err)
		return
	}
	b := tg.b
	start := p.now()
	// count counts the handshake's answer with status, for the release's
	// counters, its metrics and the access log.
	waited := held
	count := func(status int) {
		d := b.rel.record(status, start)
		b.rel.m.observe(status, waited+d, held)
		x.answered(b, d, held)
	}
	b.begin()
	defer func() { b.end() }()

	// A backend that refuses the connection leaves rotation and the
	// handshake goes to another one, or waits for one (see serve).
	var up net.Conn
	var holdUntil time.Time
	for attempt := 1; ; attempt++ {
		up, err = b.dialer.DialContext(ctx, "tcp", b.spec.Addr)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		err = &dialError{addr: b.spec.Addr, err: err}
		if attempt == maxAttempts {
			p.upgradeFailed(w, r, b, idv, count, err)
			return
		}
		b.rel.connError()
		b.rel.m.connectErrors.Add(1)
		b.refused(err)
		if holdUntil.IsZero() {
			holdUntil = time.Now().Add(p.opts.HoldTimeout)
		}
		b.rel.m.retries.Add(1)
		if x != nil {
			x.retries++
		}
		rt, herr := p.reacquire(ctx, sel, b, holdUntil)
		held += rt.held
		if herr != nil {
			x.holdEnded(held)
			p.acquireFailed(ctx, w, r, idv, herr)
			return
		}
		b.end()
		tg, b = rt, rt.b
		b.begin()
	}
	out := p.outgoing(r, idv, b.spec.Addr)
	out.Header["Connection"] = valuesUpgrade
	var key string
	if h2 {
		key = h2Handshake(out)
	} else {
		out.Header["Upgrade"] = r.Header["Upgrade"]
	}
	ws := &wsConn{up: up}
	b.rel.addWS(ws)
	if p.wsClosed.Load() {
		// CloseWebsockets ran since the check above, and may have
		// missed ws: end it as it ends the others.
		ws.goAway(closeStopping)
	}
	defer func() {
		b.rel.removeWS(ws)
		// Closing may repeat the close that ended the splice.
		_ = up.Close()
	}()
	// The handshake answer is bounded like any response's headers.
	if err := up.SetDeadline(time.Now().Add(p.opts.ResponseHeaderTimeout)); err != nil {
		p.upgradeFailed(w, r, b, idv, count, err)
		return
	}
	if err := out.Write(up); err != nil {
		p.upgradeFailed(w, r, b, idv, count, err)
		return
	}
	upr := bufio.NewReader(up)
	resp, err := http.ReadResponse(upr, out)
	if err != nil {
		p.upgradeFailed(w, r, b, idv, count, err)
		return
	}
	if err := up.SetDeadline(time.Time{}); err != nil {
		p.upgradeFailed(w, r, b, idv, count, err)
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if h2 && resp.StatusCode < 300 {
			// A 2xx to an extended CONNECT opens the websocket (RFC 8441
			// section 5): the client would take the page that follows
			// for websocket frames.
			resp.Body.Close() //nolint:errcheck // the connection is closed with up
			p.badSwitch(w, r, b, idv, count, "answered "+strconv.Itoa(resp.StatusCode)+" to a websocket handshake instead of 101 Switching Protocols")
			return
		}
		// The backend refused the upgrade; its answer is an ordinary
		// response.
		count(resp.StatusCode)
		p.relay(w, r, resp, idv, b, tg.setCookie, nil)
		return
	}
	if !tokenListed(resp.Header["Upgrade"], "websocket") {
		p.badSwitch(w, r, b, idv, count, "switched to another protocol than websocket")
		return
	}
	if h2 && (len(resp.Header["Sec-Websocket-Accept"]) != 1 || resp.Header["Sec-Websocket-Accept"][0] != acceptKey(key)) {
		p.badSwitch(w, r, b, idv, count, "answered the websocket handshake with a wrong Sec-WebSocket-Accept")
		return
	}
	count(resp.StatusCode)
	if h2 {
		p.spliceStream(w, r, resp, upr, idv, b, tg.setCookie, ws)
		return
	}

	h := w.Header()
	copyEndToEnd(h, resp.Header)
	p.stamp(h, r, b.rel, tg.setCookie)
	h["Connection"] = valuesUpgrade
	h["Upgrade"] = resp.Header["Upgrade"]
	h[headerRequestID] = idv
	client, brw, err := hj.Hijack()
	if err != nil {
		p.log.Debug("hijack client connection", "release", b.spec.Release, "instance", b.spec.ID, "err", err)
		return
	}
	ws.setClient(client)
	defer func() {
		// Closing may repeat the close that ended the splice.
		_ = client.Close()
	}()
	// The server's header read deadline must not cut the websocket.
	if err := client.SetDeadline(time.Time{}); err != nil {
		return
	}
	resp.Header = h
	resp.Body = nil // only the status line and headers; the rest is spliced
	if err := resp.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	ws.splice(brw.Reader, upr)
}

// badSwitch answers 502 to a websocket handshake whose backend answer
// cannot be relayed; why says what the instance did.
func (p *Proxy) badSwitch(w http.ResponseWriter, r *http.Request, b *Backend, idv []string, count func(status int), why string) {
	b.rel.connError()
	count(http.StatusBadGateway)
	p.stamp(w.Header(), r, b.rel, false)
	p.writeError(w, http.StatusBadGateway, idv, "cutover: instance of release "+b.spec.Release+" "+why+"\n")
}

// upgradeFailed answers a websocket handshake that could not reach the
// backend: 504 when it was too slow, else 502.
func (p *Proxy) upgradeFailed(w http.ResponseWriter, r *http.Request, b *Backend, idv []string, count func(status int), err error) {
	if r.Context().Err() != nil {
		return
	}
	b.rel.connError()
	p.log.Debug("upstream websocket handshake failed", "release", b.spec.Release, "instance", b.spec.ID, "err", err)
	status, msg := http.StatusBadGateway, "cutover: instance of release "+b.spec.Release+" failed to answer\n"
	if isTimeout(err) {
		status, msg = http.StatusGatewayTimeout, "cutover: instance of release "+b.spec.Release+
			" did not answer within "+p.opts.ResponseHeaderTimeout.String()+"\n"
	}
	count(status)
	p.stamp(w.Header(), r, b.rel, false)
	p.writeError(w, status, idv, msg)
}

// wsConn is a websocket between a client and a backend. Drain ends it
// with goAway.
type wsConn struct {
	up net.Conn
	// goingAway is set by goAway before it closes up: the relay from the
	// backend then ends the client's side with a close frame.
	goingAway atomic.Bool
	// frame is the close frame of the first goAway.
	frame atomic.Pointer[[]byte]
	mu    sync.Mutex
	// client is the client's side: the hijacked connection, or the
	// HTTP/2 stream (streamClient); nil until the handshake answer is
	// relayed. closed says goAway ran before it was set. Guarded by mu.
	client wsClient
	closed bool
}

// wsClient is the client's side of a websocket: a hijacked HTTP/1.1
// connection (a net.Conn), or an HTTP/2 stream (streamClient). Close
// ends it and makes a read from it fail.
type wsClient interface {
	io.Writer
	Close() error
	SetWriteDeadline(t time.Time) error
}

// setClient records the client connection once hijacked; a goAway that
// came first closes it at once.
func (s *wsConn) setClient(c wsClient) {
	s.mu.Lock()
	s.client = c
	closed := s.closed
	s.mu.Unlock()
	if closed {
		_ = c.Close()
	}
}

// goAway ends the websocket: the backend connection is closed, which
// ends the relay from the backend; that relay then sends the client the
// close frame frame (closeRetired or closeStopping) if it stands between
// two of the backend's frames, and closes the client connection. A relay
// blocked writing to a client that stopped reading is given
// closeFrameTimeout to finish that write: closing the backend connection
// alone would never end it.
func (s *wsConn) goAway(frame []byte) {
	s.frame.CompareAndSwap(nil, &frame)
	s.goingAway.Store(true)
	s.mu.Lock()
	s.closed = true
	client := s.client
	s.mu.Unlock()
	// Errors closing a connection being cut tell nothing useful.
	_ = s.up.Close()
	if client != nil {
		// Nor do those of bounding a write to it.
		_ = client.SetWriteDeadline(time.Now().Add(closeFrameTimeout))
	}
}

// closeFrame is a close frame the proxy sends a client when it ends its
// websocket: FIN, opcode 8, unmasked (server to client), status 1001
// "going away" (RFC 6455 section 7.4.1) and a short reason.
func closeFrame(reason string) []byte {
	return append([]byte{0x88, 2 + byte(len(reason)), 0x03, 0xE9}, reason...)
}

var (
	// closeRetired ends the websockets of a release that Drain cuts.
	closeRetired = closeFrame("release retired")
	// closeStopping ends the websockets of a proxy whose daemon stops
	// (CloseWebsockets).
	closeStopping = closeFrame("server going away")
)

// closeFrameTimeout bounds writing the close frame to a client that does
// not read.
const closeFrameTimeout = time.Second

// splice copies both ways between the client and backend connections
// (reading through their buffered readers, which may already hold data)
// until one direction ends; then it closes both connections, which ends the
// other, and waits for it. The relay from the backend follows the frames
// it forwards, so that goAway can add a close frame between two of them.
func (s *wsConn) splice(clientr io.Reader, upr io.Reader) {
	client, up := s.client, s.up
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Errors end the splice; there is no one to report them to.
		_, _ = io.Copy(up, clientr)
		_ = up.Close()
		if !s.goingAway.Load() {
			// Going away, the other relay closes the client after its
			// close frame.
			_ = client.Close()
		}
	}()
	var fr frameReader
	relayFrames(client, upr, &fr)
	if s.goingAway.Load() && fr.atBoundary() {
		// The client may be gone or not reading: the frame is a courtesy.
		_ = client.SetWriteDeadline(time.Now().Add(closeFrameTimeout))
		_, _ = client.Write(*s.frame.Load())
	}
	_ = client.Close()
	_ = up.Close()
	<-done
}

// relayFrames copies from src to dst until either fails, feeding fr what
// was written.
func relayFrames(dst io.Writer, src io.Reader, fr *frameReader) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			fr.feed(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// frameReader follows the frame boundaries of a websocket byte stream
// (RFC 6455 section 5.2) without keeping its payloads: only the frame
// headers are read. A maintained websocket library parses whole
// messages from a connection it owns; the proxy only relays bytes and
// needs to know where a frame ends.
type frameReader struct {
	// hdr collects the current frame header, hn bytes of need so far.
	hdr  [14]byte
	hn   int
	need int
	// left is the payload of the current frame still to come.
	left uint64
}

// atBoundary reports whether the bytes fed so far end with a whole frame.
func (f *frameReader) atBoundary() bool { return f.hn == 0 && f.left == 0 }

// feed follows p, the next bytes of the stream.
func (f *frameReader) feed(p []byte) {
	for len(p) > 0 {
		if f.left > 0 {
			n := min(uint64(len(p)), f.left)
			f.left -= n
			p = p[n:]
			continue
		}
		if f.hn == 0 {
			f.need = 2
		}
		c := copy(f.hdr[f.hn:f.need], p)
		f.hn += c
		p = p[c:]
		if f.hn < f.need {
			return
		}
		if f.hn == 2 {
			need := 2
			switch f.hdr[1] & 0x7f {
			case 126:
				need += 2
			case 127:
				need += 8
			}
			if f.hdr[1]&0x80 != 0 {
				need += 4 // masking key
			}
			if need > 2 {
				f.need = need
				continue
			}
		}
		switch l := f.hdr[1] & 0x7f; l {
		case 126:
			f.left = uint64(binary.BigEndian.Uint16(f.hdr[2:4]))
		case 127:
			f.left = binary.BigEndian.Uint64(f.hdr[2:10])
		default:
			f.left = uint64(l)
		}
		f.hn = 0
	}
}
