package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cutover/cutover/internal/deploy"
)

// TestSlowRequestFinishesAcrossDeploy: a 5 s request that started just
// before a deploy completes with 200 from the old version.
func TestSlowRequestFinishesAcrossDeploy(t *testing.T) {
	e := newEnv(t, settings{instances: 1, drainTimeout: "20s"})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code    int
		version string
		err     error
		took    time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		code, v, _, err := get(e.url("/slow?d=5s"))
		done <- result{code, v, err, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond) // the request is in flight at v1
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatalf("deploy v2: %v", err)
	}
	r := <-done
	if r.err != nil || r.code != http.StatusOK || r.version != "v1" {
		t.Fatalf("slow request = %d from %q, %v; want 200 from v1", r.code, r.version, r.err)
	}
	if r.took < 5*time.Second {
		t.Errorf("slow request took %s; the demo app should have held it 5s", r.took)
	}
	if _, v, _, err := get(e.url("/")); err != nil || v != "v2" {
		t.Errorf("after deploy: version %q, %v; want v2", v, err)
	}
}

// TestWebsocketKeepsEchoingUntilDrainTimeout: a websocket opened before a
// deploy keeps working while the old release drains, and is closed once
// drain_timeout has passed.
func TestWebsocketKeepsEchoingUntilDrainTimeout(t *testing.T) {
	e := newEnv(t, settings{instances: 1, drainTimeout: "3s"})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(strings.Replace(e.url("/ws"), "http", "ws", 1), nil)
	if err != nil {
		t.Fatalf("dial websocket: %v", err)
	}
	defer ws.Close()
	if v := resp.Header.Get("X-App-Version"); v != "v1" {
		t.Errorf("websocket upgraded by %q, want v1", v)
	}
	echo := func(msg string) error {
		ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
		ws.SetReadDeadline(time.Now().Add(2 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			return err
		}
		_, got, err := ws.ReadMessage()
		if err == nil && string(got) != msg {
			t.Errorf("echo = %q, want %q", got, msg)
		}
		return err
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
	// Keep talking through the drain window.
	var lastOK time.Time
	for i := 0; ; i++ {
		if err := echo("during"); err != nil {
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
}
