package demoapp

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/freeport"
)

// TestTCPEcho: the TCP listener says who it is, echoes lines, and its
// connections end when it stops.
func TestTCPEcho(t *testing.T) {
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	s, err := loadSettings([]string{"PORT=0", "DEMO_VERSION=v9", "CUTOVER_DRAIN_FILE=/x/drain/r1-2", TCPPortEnv + "=" + strconv.Itoa(port)}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(s, &syncBuffer{})
	stop, err := a.serveTCP(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		stop()
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	hello, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(hello, "demo v9 r1-2 ") {
		t.Fatalf("hello %q, %v", hello, err)
	}
	c.Write([]byte("ping\n"))
	if line, err := r.ReadString('\n'); line != "ping\n" || err != nil {
		t.Fatalf("echo %q, %v", line, err)
	}
	stop()
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("connection still open after stop")
	}
}
