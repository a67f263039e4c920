package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/tcpproxy"
)

// namedServer answers each TCP connection with its name, then echoes.
func namedServer(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestTCPTrafficFollowsHTTP: the traffic seam the deploy engine drives
// moves TCP with the HTTP weights, and a release's drain waits for its
// TCP connections up to the entry's drain_timeout, not the HTTP one.
func TestTCPTrafficFollowsHTTP(t *testing.T) {
	const tcpDrain = 400 * time.Millisecond
	px := proxy.New(proxy.Options{})
	ports := tcpproxy.New(tcpproxy.Options{Entries: []config.TCP{{
		Listen: "127.0.0.1:0", PortEnv: "P", Balance: "first", Health: "tcp",
		ConnectTimeout: config.Duration{Duration: time.Second}, DrainTimeout: config.Duration{Duration: tcpDrain},
	}}})
	lns, err := tcpproxy.Listen(ports.Entries())
	if err != nil {
		t.Fatal(err)
	}
	ports.Serve(lns)
	t.Cleanup(ports.Close)
	tr := &tcpTraffic{Traffic: px, ports: ports, log: slog.New(slog.DiscardHandler)}
	ports.Add(tcpproxy.Instance{ID: "r1-1", Release: "r1", Number: 1, Ports: map[string]int{"P": namedServer(t, "r1")}})
	ports.Add(tcpproxy.Instance{ID: "r2-1", Release: "r2", Number: 1, Ports: map[string]int{"P": namedServer(t, "r2")}})

	dial := func() (net.Conn, *bufio.Reader, string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", ports.Addr(0).String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return c, r, strings.TrimSpace(line)
	}
	tr.SetActive("r1")
	long, lr, who := dial()
	defer long.Close()
	if who != "r1" {
		t.Fatalf("after SetActive(r1): %q", who)
	}
	tr.SetWeights(map[string]int{"r1": 95, "r2": 5})
	if c, _, who := dial(); who != "r1" {
		t.Errorf("canary at 5%%: TCP went to %q, want r1 (the heavier)", who)
	} else {
		c.Close()
	}
	tr.SetWeights(map[string]int{"r1": 50, "r2": 50})
	if c, _, who := dial(); who != "r2" {
		t.Errorf("at 50/50: TCP went to %q, want r2 (the newer)", who)
	} else {
		c.Close()
	}
	tr.SetActive("r2")

	// The HTTP drain has nothing in flight and a deadline of 10 ms: the
	// TCP connection still gets its own drain_timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := tr.Drain(ctx, "r1", 0)
	took := time.Since(start)
	if took < tcpDrain || took > tcpDrain+time.Second {
		t.Errorf("drain took %v, want the TCP drain_timeout %v", took, tcpDrain)
	}
	if res.Cut != 1 {
		t.Errorf("drain result %+v, want the long connection cut", res)
	}
	if _, err := lr.ReadString('\n'); err == nil {
		t.Error("the long connection is still open after the drain")
	}
}
