package rawio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection, the first
// wrapped in a Conn.
func pair(t *testing.T) (*Conn, net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	rc := New(a)
	if rc == nil {
		t.Fatal("New returned nil for a TCP connection")
	}
	return rc, a, b
}

func TestRoundTripLarge(t *testing.T) {
	rc, _, peer := pair(t)
	// More than the socket buffers hold: the write must wait for the
	// reader, through the runtime's poller, not spin or fail.
	want := make([]byte, 8<<20)
	rand.Read(want)
	done := make(chan error, 1)
	go func() {
		n, err := rc.Write(want)
		if err == nil && n != len(want) {
			err = errors.New("short write")
		}
		done <- err
	}()
	got := make([]byte, 0, len(want))
	buf := make([]byte, 7777)
	peer.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(got) < len(want) {
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("peer read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}

	// And back: Read waits for data, returns what is there.
	go peer.Write(want[:100000])
	got = got[:0]
	for len(got) < 100000 {
		n, err := rc.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want[:100000]) {
		t.Fatal("bytes read differ")
	}
}

func TestEOFAndZeroRead(t *testing.T) {
	rc, _, peer := pair(t)
	if n, err := rc.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
	peer.Write([]byte("bye"))
	peer.Close()
	b, err := io.ReadAll(rc)
	if err != nil || string(b) != "bye" {
		t.Fatalf("read to the end: %q, %v", b, err)
	}
	if _, err := rc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the end: %v, want io.EOF", err)
	}
}

func TestDeadlineIsATimeout(t *testing.T) {
	rc, c, _ := pair(t)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := rc.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("error %v: want a *net.OpError with Op read", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timed out after %v", d)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	rc, c, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := rc.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed conn: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
}

func TestResetIsAReadError(t *testing.T) {
	rc, c, peer := pair(t)
	// Unread data at close makes the peer send a reset.
	c.Write([]byte("unread"))
	time.Sleep(20 * time.Millisecond)
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close()
	time.Sleep(20 * time.Millisecond)
	var err error
	for range 3 {
		if _, err = rc.Read(make([]byte, 10)); err != nil {
			break
		}
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || oe.Addr == nil {
		t.Fatalf("read after a reset: %v, want a *net.OpError for read with the address", err)
	}
	if _, err := rc.Write([]byte("x")); err == nil {
		// The first write after a reset may still succeed; a second fails.
		if _, err := rc.Write([]byte("x")); err == nil {
			t.Fatal("writes after a reset keep succeeding")
		}
	}
}

func TestNewWithoutSocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if New(a) != nil {
		t.Fatal("New of a net.Pipe end: want nil")
	}
}
