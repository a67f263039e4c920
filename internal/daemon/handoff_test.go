package daemon

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// TestDrainAcceptsUntilHandover: a daemon that stops with no successor on
// its socket keeps accepting through the grace (clients told to close
// reconnect to it, not to a closed port) and closes at the end; with a
// successor already accepting it stops at once; with one starting (socket
// activation) it accepts until the successor serves, then stops.
func TestDrainAcceptsUntilHandover(t *testing.T) {
	const grace = 300 * time.Millisecond
	later := make(chan struct{})
	for _, tc := range []struct {
		name     string
		handover <-chan struct{}
		fire     chan struct{} // closed after the first dial
		accepted bool          // a dial during the grace is accepted
	}{
		{"no successor", nil, nil, true},
		{"successor accepting", closedChan(), nil, false},
		{"successor starting", later, later, true},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		h := newHandoff()
		var client net.Conn // one open client connection keeps the grace going
		h.conns[client] = struct{}{}
		done := make(chan struct{})
		go func() {
			h.drain(context.Background(), []net.Listener{ln}, grace, tc.handover)
			close(done)
		}()
		time.Sleep(grace / 3)
		c, err := net.Dial("tcp", addr)
		if !tc.accepted {
			if err == nil {
				c.Close()
				t.Errorf("%s: a connection during the grace was accepted; want the port closed at once", tc.name)
			}
		} else if err != nil {
			t.Errorf("%s: dial during the grace: %v; want it accepted", tc.name, err)
		} else {
			c.Close()
		}
		if tc.fire != nil {
			select {
			case <-done:
				t.Errorf("%s: drain returned before the successor served", tc.name)
			case <-time.After(grace):
			}
			close(tc.fire)
			time.Sleep(50 * time.Millisecond)
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				t.Errorf("%s: the listener still accepts once the successor serves", tc.name)
			}
		}
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Fatalf("%s: drain did not return after its grace", tc.name)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s: the listener still accepts after drain", tc.name)
		}
	}
}

// TestSuccessorServes: the wait for the next daemon ends when it replaces
// the admin socket, or at the bound.
func TestSuccessorServes(t *testing.T) {
	path := t.TempDir() + "/cutover.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	defer ln.Close()
	mine, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	ch := successorServes(path, mine, waitTimeout)
	select {
	case <-ch:
		t.Fatal("successorServes fired while the socket is still this daemon's")
	case <-time.After(100 * time.Millisecond):
	}
	os.Remove(path)
	ln2, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("successorServes did not fire once another daemon listened on the admin socket")
	}
	t0 := time.Now()
	<-successorServes(path, mine, 100*time.Millisecond)
	if d := time.Since(t0); d > time.Second {
		t.Errorf("successorServes with no successor took %v, want its bound", d)
	}
	mine2, _ := os.Lstat(path)
	t0 = time.Now()
	<-successorServes(path, mine2, 200*time.Millisecond)
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Errorf("successorServes with no successor returned after %v, want its bound", d)
	}
}
