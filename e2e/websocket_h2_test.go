package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/cutover/cutover/internal/deploy"
)

// TestTLSWebsocketOverH2Drains opens a WebSocket over HTTP/2 (RFC 8441,
// as Chrome and Firefox do on an HTTP/2 connection) to the real daemon's
// TLS listener, started by the keeper with a GODEBUG of the user's, then
// deploys under it: the websocket keeps echoing through the drain, like
// an HTTP/1.1 one (TestWebsocketKeepsEchoingUntilDrainTimeout), and ends
// with a close frame, 1001 going away, once drain_timeout has passed.
// The app's instance got exactly the user's GODEBUG, not the one the
// daemon's HTTP/2 server needs.
func TestTLSWebsocketOverH2Drains(t *testing.T) {
	const userGODEBUG = "madvdontneed=1"
	t.Setenv("GODEBUG", userGODEBUG)
	tlsPort := pickPort(t)
	e := newEnv(t, settings{
		instances:    1,
		drainTimeout: "3s",
		extraApp:     "tls_cert = \"tls.crt\"\ntls_key = \"tls.key\"",
		extra:        fmt.Sprintf("tls_listen = \"127.0.0.1:%d\"\n", tlsPort),
	})
	roots := selfSigned(t, e.dir)
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	for _, in := range e.status().Instances {
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", in.PID))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for kv := range bytes.SplitSeq(environ, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("GODEBUG=")); ok {
				got = append(got, string(v))
			}
		}
		if len(got) != 1 || got[0] != userGODEBUG {
			t.Errorf("instance %s (pid %d) has GODEBUG %q, want only the user's %q", in.ID, in.PID, got, userGODEBUG)
		}
	}

	ws := openH2WS(t, e, tlsPort, roots)
	if v := ws.resp.Header.Get("X-App-Version"); v != "v1" {
		t.Errorf("websocket opened by %q, want v1", v)
	}
	pw, frames := ws.out, ws.frames
	var closeFrame []byte
	echo := func(msg string) error {
		if err := writeMaskedText(pw, msg); err != nil {
			return err
		}
		select {
		case f := <-frames:
			if f.err != nil {
				return f.err
			}
			if f.op == 0x8 {
				closeFrame = f.payload
				return fmt.Errorf("close frame")
			}
			if f.op != 0x1 || string(f.payload) != msg {
				t.Errorf("echo = opcode %d %q, want text %q", f.op, f.payload, msg)
			}
			return nil
		case <-time.After(2 * time.Second):
			return fmt.Errorf("no echo within 2s")
		}
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}
	deployDone := make(chan error, 1)
	switched := time.Now()
	go func() {
		_, _, err := e.deploy(deploy.Request{Source: v2})
		deployDone <- err
	}()
	var lastOK time.Time
	var endErr error
	for {
		if endErr = echo("during"); endErr != nil {
			break
		}
		lastOK = time.Now()
		if time.Since(switched) > 15*time.Second {
			t.Fatal("websocket still open 15s after the deploy began; drain_timeout is 3s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := <-deployDone; err != nil {
		t.Fatalf("deploy v2: %v", err)
	}
	if kept := lastOK.Sub(switched); kept < 2500*time.Millisecond {
		t.Errorf("websocket echoed for %s after the deploy began; want until drain_timeout (3s)", kept)
	}
	// The end: a close frame 1001 between two of the app's frames (the
	// app only answers, so the proxy is always between two), then the
	// end of the stream.
	for f := range frames {
		if f.err != nil {
			break
		}
		if f.op == 0x8 {
			closeFrame = f.payload
		}
	}
	if len(closeFrame) < 2 || binary.BigEndian.Uint16(closeFrame) != 1001 {
		t.Errorf("end of the websocket (%v): close frame %q, want status 1001 going away", endErr, closeFrame)
	}
	after, err := (&http.Client{Transport: ws.tr, Timeout: 10 * time.Second}).Get(fmt.Sprintf("https://127.0.0.1:%d/", tlsPort))
	if err != nil {
		t.Fatalf("after deploy: %v", err)
	}
	after.Body.Close()
	if v := after.Header.Get("X-App-Version"); v != "v2" {
		t.Errorf("after deploy: version %q, want v2", v)
	}
}

// h2WS is a websocket over HTTP/2 to the daemon's TLS listener.
type h2WS struct {
	tr     *http2.Transport
	resp   *http.Response
	out    *io.PipeWriter
	frames chan wsFrame
}

// openH2WS opens a websocket over HTTP/2 (RFC 8441) to /ws on the TLS
// listener at tlsPort, trusting roots; it is closed when the test ends.
func openH2WS(t *testing.T, e *env, tlsPort int, roots *x509.CertPool) *h2WS {
	t.Helper()
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, fmt.Sprintf("https://127.0.0.1:%d/ws", tlsPort), pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("extended CONNECT to the daemon: %v\ndaemon log:\n%s", err, tail(e.daemonLog(), 20))
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("extended CONNECT: %s %s, want HTTP/2.0 200", resp.Proto, resp.Status)
	}
	ws := &h2WS{tr: tr, resp: resp, out: pw, frames: make(chan wsFrame, 16)}
	go readFrames(bufio.NewReader(resp.Body), ws.frames)
	return ws
}

// TestTLSWebsocketOverH2Upgrade: `cutover upgrade` under an open
// websocket over HTTP/2 ends it at once with a close frame (1001), so
// that the client reconnects to the new daemon, and the old daemon exits
// without waiting for the stream (it held the TLS server's Shutdown for
// its whole 20 s deadline, then dropped the connection).
func TestTLSWebsocketOverH2Upgrade(t *testing.T) {
	tlsPort := pickPort(t)
	e := newEnv(t, settings{
		instances: 1,
		extraApp:  "tls_cert = \"tls.crt\"\ntls_key = \"tls.key\"",
		extra:     fmt.Sprintf("tls_listen = \"127.0.0.1:%d\"\n", tlsPort),
	})
	roots := selfSigned(t, e.dir)
	v1 := e.release("v1", "")
	exe := e.ownBinary()
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	ws := openH2WS(t, e, tlsPort, roots)
	if err := writeMaskedText(ws.out, "hi"); err != nil {
		t.Fatal(err)
	}
	if f := <-ws.frames; f.err != nil || string(f.payload) != "hi" {
		t.Fatalf("echo: %q, %v", f.payload, f.err)
	}
	old := e.daemonPID()
	installBinary(t, bin, exe)
	start := time.Now()
	if out, errOut, code := e.run("upgrade"); code != 0 {
		t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	var closeFrame []byte
	var endErr error
	for f := range ws.frames {
		if f.op == 0x8 {
			closeFrame = f.payload
		}
		if f.err != nil {
			endErr = f.err
			break
		}
	}
	ended := time.Since(start)
	if len(closeFrame) < 2 || binary.BigEndian.Uint16(closeFrame) != 1001 {
		t.Errorf("websocket ended after %v (%v) with close frame %q, want 1001 going away", ended, endErr, closeFrame)
	}
	for st := procState(old); st != 'Z' && st != 0; st = procState(old) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("old daemon %d still running 10s after the upgrade; websocket ended after %v", old, ended)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("websocket ended %v, old daemon gone %v after the upgrade began", ended, time.Since(start))
	if log := e.daemonLog(); strings.Contains(log, "TLS shutdown") {
		t.Errorf("the old daemon's TLS server did not shut down in time:\n%s", tail(log, 20))
	}
	// The client reconnects: to the new daemon.
	again := openH2WS(t, e, tlsPort, roots)
	if err := writeMaskedText(again.out, "again"); err != nil {
		t.Fatal(err)
	}
	if f := <-again.frames; f.err != nil || string(f.payload) != "again" {
		t.Errorf("echo after the upgrade: %q, %v", f.payload, f.err)
	}
}

// wsFrame is one websocket frame read, or the error that ended the
// stream.
type wsFrame struct {
	op      byte
	payload []byte
	err     error
}

// readFrames sends the server's (unmasked) frames read from r to ch, then
// the error that ended r, and closes ch.
func readFrames(r *bufio.Reader, ch chan<- wsFrame) {
	defer close(ch)
	for {
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			ch <- wsFrame{err: err}
			return
		}
		n := uint64(h[1] & 0x7f)
		var ext []byte
		switch n {
		case 126:
			ext = make([]byte, 2)
		case 127:
			ext = make([]byte, 8)
		}
		if _, err := io.ReadFull(r, ext); err != nil {
			ch <- wsFrame{err: err}
			return
		}
		if len(ext) == 2 {
			n = uint64(binary.BigEndian.Uint16(ext))
		} else if len(ext) == 8 {
			n = binary.BigEndian.Uint64(ext)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			ch <- wsFrame{err: err}
			return
		}
		ch <- wsFrame{op: h[0] & 0x0f, payload: p}
	}
}

// writeMaskedText writes msg (under 126 bytes) as a client's text frame,
// masked with a zero key (RFC 6455 section 5.3), which leaves it as is.
func writeMaskedText(w io.Writer, msg string) error {
	if len(msg) >= 126 {
		return fmt.Errorf("message of %d bytes: too long for this helper", len(msg))
	}
	_, err := w.Write(append([]byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0}, msg...))
	return err
}
