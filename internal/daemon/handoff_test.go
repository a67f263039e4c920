package daemon

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestDrainKeepsAcceptingWithoutSuccessor: a daemon that stops with no
// successor on its socket keeps accepting through the grace (clients told
// to close reconnect to it, not to a closed port) and closes at the end;
// with a successor it stops accepting at once.
func TestDrainKeepsAcceptingWithoutSuccessor(t *testing.T) {
	for _, successor := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		h := newHandoff()
		var client net.Conn // one open client connection keeps the grace going
		h.conns[client] = struct{}{}
		const grace = 300 * time.Millisecond
		done := make(chan struct{})
		go func() {
			h.drain(context.Background(), ln, grace, successor)
			close(done)
		}()
		time.Sleep(grace / 3)
		c, err := net.Dial("tcp", addr)
		if successor {
			if err == nil {
				c.Close()
				t.Errorf("successor: a connection during the grace was accepted; want the port closed at once")
			}
		} else if err != nil {
			t.Errorf("no successor: dial during the grace: %v; want it accepted until the end", err)
		} else {
			c.Close()
		}
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Fatalf("drain did not return after its grace")
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("successor=%v: the listener still accepts after drain", successor)
		}
	}
}
