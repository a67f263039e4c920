package tlsfront

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"

	"github.com/cutover/cutover/internal/proxy"
)

// h2Client returns an HTTP/2 client transport of f trusting cert's pool:
// x/net's, since net/http's refuses the :protocol field of an extended
// CONNECT.
func (f *front) h2Client(t testing.TB, cert testCert) *http2.Transport {
	t.Helper()
	tr := &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool(cert), NextProtos: []string{"h2"}},
		DialTLSContext: func(ctx context.Context, _, _ string, cfg *tls.Config) (net.Conn, error) {
			d := tls.Dialer{Config: cfg}
			return d.DialContext(ctx, "tcp", f.addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// writeFrame writes a client's (masked, with a zero key) text frame.
func writeFrame(w io.Writer, msg string) error {
	hdr := []byte{0x81}
	if len(msg) < 126 {
		hdr = append(hdr, 0x80|byte(len(msg)))
	} else {
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(msg)))
	}
	// A zero masking key leaves the payload as it is.
	_, err := w.Write(append(append(hdr, 0, 0, 0, 0), msg...))
	return err
}

// readFrame reads a server's (unmasked) frame of less than 64 KiB.
func readFrame(r *bufio.Reader) (op byte, payload string, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, "", err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, "", err
		}
		n = int(binary.BigEndian.Uint16(b[:]))
	}
	p := make([]byte, n)
	_, err = io.ReadFull(r, p)
	return h[0] & 0x0f, string(p), err
}

// TestProxyWebSocketOverH2 checks a WebSocket over HTTP/2 (RFC 8441) on
// the TLS listener, as Chrome and Firefox open one on an HTTP/2
// connection: the server announces the extended CONNECT (the test binary
// runs with package xconnect's GODEBUG, as the daemon does), the app gets
// an HTTP/1.1 websocket and the messages go both ways.
func TestProxyWebSocketOverH2(t *testing.T) {
	up := websocket.Upgrader{}
	p := proxy.New(proxy.Options{App: "shop"})
	p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: backend(t, func(w http.ResponseWriter, r *http.Request) {
		seen := fmt.Sprintf("%s %s %s", r.Method, r.Proto, r.Header.Get("X-Forwarded-Proto"))
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(mt, append([]byte(seen+" "), m...)) //nolint:errcheck // the client checks
		}
	})}).SetHealthy(true)
	p.SetActive("a")
	f, cert := tlsProxy(t, p)
	tr := f.h2Client(t, cert)

	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, "https://shop.example.com/ws", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("extended CONNECT: %v (GODEBUG=%q)", err, os.Getenv("GODEBUG"))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("extended CONNECT: got %s %s, want HTTP/2.0 200", resp.Proto, resp.Status)
	}
	in := bufio.NewReader(resp.Body)
	for i := range 3 {
		msg := fmt.Sprintf("m%d", i)
		if err := writeFrame(pw, msg); err != nil {
			t.Fatal(err)
		}
		op, got, err := readFrame(in)
		if want := "GET HTTP/1.1 https " + msg; err != nil || op != websocket.TextMessage || got != want {
			t.Fatalf("echo %d: opcode %d %q, %v; want %q", i, op, got, err, want)
		}
	}
	// The client ends its side: the stream ends, the websocket is over.
	pw.Close()
	if _, err := io.Copy(io.Discard, in); err != nil {
		t.Errorf("end of stream: %v", err)
	}
	deadline := time.Now().Add(waitLimit)
	for p.Stats()["a"].InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatal("websocket still in flight after the client ended its stream")
		}
		time.Sleep(time.Millisecond)
	}
}
