package proxy

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A websocket over HTTP/2 (RFC 8441) reaches the app as an HTTP/1.1
// websocket: the app's instances speak HTTP/1.1 only, and so do the
// websocket libraries of most apps. serveUpgrade does the handshake with
// the backend; this file holds what differs from HTTP/1.1 on the client's
// side.

// h2Handshake turns out, the backend's copy of an extended CONNECT, into
// an HTTP/1.1 websocket handshake (RFC 6455 section 4.1) and returns the
// Sec-WebSocket-Key it sent: a fresh one, since the HTTP/2 client sent
// none (RFC 8441 section 5). Sec-WebSocket-Version, -Protocol and
// -Extensions pass as the client sent them.
func h2Handshake(out *http.Request) string {
	out.Method = http.MethodGet
	// The stream's body is the websocket, spliced once the backend has
	// switched; the handshake has none.
	out.Body, out.GetBody, out.ContentLength = nil, nil, 0
	h := out.Header
	delete(h, ":protocol")
	h["Upgrade"] = valuesWebsocket
	if len(h["Sec-Websocket-Version"]) == 0 {
		h["Sec-Websocket-Version"] = valuesWSVersion
	}
	var nonce [16]byte
	// crypto/rand's Read never fails (it crashes the program instead).
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	h["Sec-Websocket-Key"] = []string{key}
	return key
}

var (
	valuesWebsocket = []string{"websocket"}
	valuesWSVersion = []string{"13"}
)

// acceptKey is the Sec-WebSocket-Accept a server answers to key (RFC 6455
// section 4.2.2).
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// spliceStream answers an extended CONNECT whose backend switched
// protocols (resp, read from upr on ws.up): the client gets 200 with the
// backend's end-to-end headers (the subprotocol and extensions it chose
// among them) but its handshake's own, then the stream and the backend
// connection are spliced as an HTTP/1.1 websocket's connections are.
func (p *Proxy) spliceStream(w http.ResponseWriter, r *http.Request, resp *http.Response, upr *bufio.Reader, idv []string, b *Backend, setCookie bool, ws *wsConn) {
	h := w.Header()
	copyEndToEnd(h, resp.Header)
	delete(h, "Sec-Websocket-Accept")
	p.stamp(h, r, b.rel, setCookie)
	if _, ok := h["Content-Type"]; !ok {
		// Keep net/http from sniffing the first frame.
		h["Content-Type"] = nil
	}
	h[headerRequestID] = idv
	c := &streamClient{w: w, rc: http.NewResponseController(w), body: r.Body}
	// Once the handler returns, w is net/http's again: a late goAway must
	// not reach it.
	defer c.finish()
	ws.setClient(c)
	w.WriteHeader(http.StatusOK)
	if err := c.rc.Flush(); err != nil {
		_ = c.Close() // the stream is gone: nothing to tell anyone
		return
	}
	ws.splice(r.Body, upr)
}

// streamClient is the client's side of a websocket over an HTTP/2
// stream: what it writes goes out at once (a websocket's frames cannot
// wait for a buffer to fill). Close closes the request body, which ends a
// read of it, and resets the stream if a write to a client that does not
// read is blocked on it, as closing a connection ends a write to it;
// otherwise the handler's return ends the stream cleanly.
type streamClient struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	body io.ReadCloser

	// writing is set during a Write, closed once Close began. Each is set
	// before the other is looked at, so a Write that begins as Close runs
	// is either refused or seen (and reset).
	writing, closed atomic.Bool

	// mu keeps SetWriteDeadline, which goAway calls from another
	// goroutine, from reaching w once the handler is over (net/http's
	// HTTP/2 writer is invalid then); over says it is. Guarded by mu.
	mu   sync.Mutex
	over bool
}

// finish marks the handler over.
func (c *streamClient) finish() {
	c.mu.Lock()
	c.over = true
	c.mu.Unlock()
}

func (c *streamClient) Write(b []byte) (int, error) {
	c.writing.Store(true)
	defer c.writing.Store(false)
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.w.Write(b)
	if err != nil {
		return n, err
	}
	return n, c.rc.Flush()
}

func (c *streamClient) Close() error {
	c.closed.Store(true)
	err := c.body.Close()
	if c.writing.Load() {
		// A deadline in the past resets the stream at once.
		_ = c.SetWriteDeadline(time.Now().Add(-time.Second))
	}
	return err
}

func (c *streamClient) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over {
		return net.ErrClosed
	}
	return c.rc.SetWriteDeadline(t)
}
