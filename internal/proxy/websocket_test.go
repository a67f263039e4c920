package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echoBackend starts a websocket backend echoing every message, prefixed
// with name. Each connection it closes is reported on closed.
func echoBackend(t *testing.T, name string) (addr string, closed <-chan struct{}) {
	t.Helper()
	done := make(chan struct{}, 8)
	up := websocket.Upgrader{}
	_, addr = startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, "websocket only", http.StatusBadRequest)
			return
		}
		c, err := up.Upgrade(w, r, http.Header{"X-Backend": {name}})
		if err != nil {
			return
		}
		defer func() {
			c.Close()
			done <- struct{}{}
		}()
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, append([]byte(name+":"), msg...)); err != nil {
				return
			}
		}
	})
	return addr, done
}

// dialWS opens a websocket through the proxy at url ("http://...").
func dialWS(t *testing.T, url string) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitLimit}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(url, "http")+"/ws", http.Header{"X-Request-Id": {"ws-1"}})
	if err != nil {
		t.Fatalf("dial websocket: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, resp
}

func echo(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write message: %v", err)
	}
	_, got, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	return string(got)
}

func TestWebsocketEcho(t *testing.T) {
	addr, closed := echoBackend(t, "a")
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	c, resp := dialWS(t, url)
	if got := resp.Header.Get("X-Backend"); got != "a" {
		t.Errorf("handshake X-Backend: got %q, want %q", got, "a")
	}
	if got := resp.Header.Get("X-Request-Id"); got != "ws-1" {
		t.Errorf("handshake X-Request-Id: got %q, want %q", got, "ws-1")
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 100_000)} {
		if got, want := echo(t, c, msg), "a:"+msg; got != want {
			t.Errorf("echo: got %.20q (%d bytes), want %.20q (%d bytes)", got, len(got), want, len(want))
		}
	}
	if got := p.Stats()["r1"].InFlight; got != 1 {
		t.Errorf("in flight with an open websocket: got %d, want 1", got)
	}

	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	recv(t, closed, "backend to see the websocket closed")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if res := p.Drain(ctx, "r1", 0); res.Cut != 0 {
		t.Errorf("drain after close: got %d cut, want 0", res.Cut)
	}
}

func TestWebsocketRefusedUpgradeRelayed(t *testing.T) {
	addr, _ := echoBackend(t, "a")
	p, url := startProxy(t, Options{})
	addHealthy(p, "a", "r1", addr)
	p.SetActive("r1")

	// A websocket handshake missing its key: the backend answers 400.
	req, err := http.NewRequest(http.MethodGet, url+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status: got %d, want %d", resp.StatusCode, http.StatusBadRequest)
	}
}

func TestDrainCutsWebsocketAtDeadline(t *testing.T) {
	oldAddr, oldClosed := echoBackend(t, "old")
	newAddr, _ := echoBackend(t, "new")
	p, url := startProxy(t, Options{})
	addHealthy(p, "old", "r1", oldAddr)
	p.SetActive("r1")

	c, _ := dialWS(t, url)
	if got := echo(t, c, "hi"); got != "old:hi" {
		t.Fatalf("echo: got %q, want %q", got, "old:hi")
	}
	addHealthy(p, "new", "r2", newAddr)
	p.SetActive("r2")

	// New websockets go to the new release while the old one is still open.
	c2, _ := dialWS(t, url)
	if got := echo(t, c2, "hi"); got != "new:hi" {
		t.Errorf("echo on new websocket: got %q, want %q", got, "new:hi")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := p.Drain(ctx, "r1", 0)
	if res != (DrainResult{Finished: 0, Cut: 1}) {
		t.Errorf("drain: got %+v, want %+v", res, DrainResult{Cut: 1})
	}
	if err := c.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err == nil {
		t.Errorf("read on cut websocket: got %q, want an error", msg)
	}
	recv(t, oldClosed, "old backend to see its websocket cut")
	if got := echo(t, c2, "still"); got != "new:still" {
		t.Errorf("echo on new websocket after drain: got %q, want %q", got, "new:still")
	}
}
