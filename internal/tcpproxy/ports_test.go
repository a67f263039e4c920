package tcpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// instanceServer is an instance's TCP port: it says its name on each
// connection, then echoes what it reads until the client half-closes,
// and then closes.
type instanceServer struct {
	name string
	ln   net.Listener

	mu    sync.Mutex
	conns []net.Conn
}

func newInstanceServer(t *testing.T, name string) *instanceServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &instanceServer{name: name, ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				io.Copy(c, c) //nolint:errcheck // echo until EOF
			}()
		}
	}()
	t.Cleanup(s.kill)
	return s
}

func (s *instanceServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// kill closes the listener and every connection, as a kill -9 does.
func (s *instanceServer) kill() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// newPorts serves one entry on a loopback port with instances servers
// numbered from 1 in release rel, routed.
func newPorts(t testing.TB, cfg config.TCP, rel string, servers ...*instanceServer) *Ports {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.PortEnv = "P"
	if cfg.Balance == "" {
		cfg.Balance = "first"
	}
	if cfg.Health == "" {
		cfg.Health = "tcp"
	}
	if cfg.ConnectTimeout.Duration == 0 {
		cfg.ConnectTimeout.Duration = time.Second
	}
	if cfg.DrainTimeout.Duration == 0 {
		cfg.DrainTimeout.Duration = 5 * time.Second
	}
	p := New(Options{Entries: []config.TCP{cfg}, Health: config.Health{
		Interval: config.Duration{Duration: 50 * time.Millisecond}, Timeout: config.Duration{Duration: time.Second}, HealthyAfter: 1, UnhealthyAfter: 1,
	}})
	lns, err := Listen(p.Entries())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Serve(lns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	for i, s := range servers {
		addInstance(p, rel, i+1, s)
	}
	p.Route(map[string]int{rel: 100})
	if cfg.Health == "http" {
		for i := range servers {
			p.SetHTTPHealthy(rel+"-"+strconv.Itoa(i+1), true)
		}
	}
	waitHealthy(t, p, len(servers))
	return p
}

func addInstance(p *Ports, rel string, n int, s *instanceServer) {
	p.Add(Instance{ID: rel + "-" + strconv.Itoa(n), Release: rel, Number: n, Ports: map[string]int{"P": s.port()}})
}

// waitHealthy waits until n instances of the entry are healthy.
func waitHealthy(t testing.TB, p *Ports, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ok := 0
		for _, b := range p.Status()[0].Instances {
			if b.Healthy {
				ok++
			}
		}
		if ok >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("not %d healthy instances: %+v", n, p.Status())
}

// dial connects to the entry and returns the connection and the name of
// the instance that answered.
func dial(t *testing.T, p *Ports) (*net.TCPConn, *bufio.Reader, string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(0).String(), 2*time.Second)
	if err != nil {
		return nil, nil, "", err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, nil, "", fmt.Errorf("read the instance's name: %w", err)
	}
	return c.(*net.TCPConn), r, strings.TrimSpace(name), nil
}

// who connects once and returns who answered.
func who(t *testing.T, p *Ports) string {
	t.Helper()
	c, _, name, err := dial(t, p)
	if err != nil {
		t.Fatalf("connection failed: %v", err)
	}
	c.Close()
	return name
}

func TestFirstTakesEverythingWhileUp(t *testing.T) {
	a, b := newInstanceServer(t, "a"), newInstanceServer(t, "b")
	p := newPorts(t, config.TCP{Balance: "first"}, "r1", a, b)
	for i := range 20 {
		if got := who(t, p); got != "a" {
			t.Fatalf("connection %d went to %q, want %q (the first instance)", i, got, "a")
		}
	}
	if got := p.Status()[0].Next; got != "r1-1" {
		t.Errorf("status next = %q, want r1-1", got)
	}
}

// TestFirstFailsOverWithNoneRefused kills the first instance: the very
// next connections, before any health check notices, go to the second,
// and none is refused.
func TestFirstFailsOverWithNoneRefused(t *testing.T) {
	a, b := newInstanceServer(t, "a"), newInstanceServer(t, "b")
	p := newPorts(t, config.TCP{Balance: "first"}, "r1", a, b)
	if got := who(t, p); got != "a" {
		t.Fatalf("before the kill: %q", got)
	}
	a.kill()
	for i := range 50 {
		c, _, name, err := dial(t, p)
		if err != nil {
			t.Fatalf("connection %d after the kill failed: %v", i, err)
		}
		c.Close()
		if name != "b" {
			t.Fatalf("connection %d went to %q, want b", i, name)
		}
	}
	if got := p.Status()[0].Next; got != "r1-2" {
		t.Errorf("status next = %q, want r1-2", got)
	}
}

func TestRoundRobinSpreads(t *testing.T) {
	a, b, c := newInstanceServer(t, "a"), newInstanceServer(t, "b"), newInstanceServer(t, "c")
	p := newPorts(t, config.TCP{Balance: "round-robin"}, "r1", a, b, c)
	got := map[string]int{}
	for range 30 {
		got[who(t, p)]++
	}
	if got["a"] != 10 || got["b"] != 10 || got["c"] != 10 {
		t.Errorf("30 connections went %v, want 10 to each", got)
	}
	b.kill()
	got = map[string]int{}
	for range 20 {
		got[who(t, p)]++
	}
	if got["b"] != 0 || got["a"]+got["c"] != 20 {
		t.Errorf("after b died, 20 connections went %v", got)
	}
}

// TestHalfClose: a client that shuts its write side still gets the whole
// answer, and the instance sees the end of what it sent.
func TestHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "counter\n")
				n, _ := io.Copy(io.Discard, c) // until the client's FIN
				time.Sleep(50 * time.Millisecond)
				fmt.Fprintf(c, "read %d bytes", n)
			}()
		}
	}()
	s := &instanceServer{name: "counter", ln: ln}
	p := newPorts(t, config.TCP{}, "r1", s)
	c, r, _, err := dial(t, p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("x"), 1<<20)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read after half-close: %v", err)
	}
	if got, want := string(rest), fmt.Sprintf("read %d bytes", len(payload)); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// headerServer records the first bytes each connection brings.
func headerServer(t *testing.T, n int) (*instanceServer, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, n)
				if _, err := io.ReadFull(c, buf); err != nil {
					return // a health check: nothing sent
				}
				got <- buf
				fmt.Fprintf(c, "ok\n")
			}()
		}
	}()
	return &instanceServer{name: "h", ln: ln}, got
}

func TestProxyProtocolV1Bytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lines := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return // a health check
				}
				lines <- line
				fmt.Fprintf(c, "ok\n")
			}()
		}
	}()
	p := newPorts(t, config.TCP{ProxyProtocol: "v1"}, "r1", &instanceServer{name: "h", ln: ln})
	c, _, name, err := dialRaw(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if name != "ok" {
		t.Fatalf("answer %q", name)
	}
	local := c.LocalAddr().(*net.TCPAddr)
	remote := c.RemoteAddr().(*net.TCPAddr)
	// Spec, 2.1: "PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n".
	want := fmt.Sprintf("PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n", local.Port, remote.Port)
	if got := <-lines; got != want {
		t.Errorf("header %q, want %q", got, want)
	}
}

func TestProxyProtocolV2Bytes(t *testing.T) {
	s, got := headerServer(t, 28) // 16 fixed + 12 of IPv4 addresses
	p := newPorts(t, config.TCP{ProxyProtocol: "v2"}, "r1", s)
	c, _, name, err := dialRaw(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if name != "ok" {
		t.Fatalf("answer %q", name)
	}
	local := c.LocalAddr().(*net.TCPAddr)
	remote := c.RemoteAddr().(*net.TCPAddr)
	// Spec, 2.2: the 12-byte signature; 0x21: version 2, PROXY; 0x11:
	// TCP over IPv4; the length of what follows, 12; source and
	// destination addresses, then ports, in network order.
	want := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	want = append(want, 127, 0, 0, 1, 127, 0, 0, 1)
	want = binary.BigEndian.AppendUint16(want, uint16(local.Port))
	want = binary.BigEndian.AppendUint16(want, uint16(remote.Port))
	if h := <-got; !bytes.Equal(h, want) {
		t.Errorf("header\n got % x\nwant % x", h, want)
	}
}

// dialRaw connects and reads one line, the instance's first.
func dialRaw(p *Ports) (*net.TCPConn, *bufio.Reader, string, error) {
	c, err := net.DialTimeout("tcp", p.Addr(0).String(), 2*time.Second)
	if err != nil {
		return nil, nil, "", err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	return c.(*net.TCPConn), r, strings.TrimSpace(line), err
}

// TestSwitchAndDrain: Route moves new connections to the new release at
// once; the old release's open connection keeps working until
// drain_timeout, and is closed then.
func TestSwitchAndDrain(t *testing.T) {
	old1, new1 := newInstanceServer(t, "old"), newInstanceServer(t, "new")
	const drain = 300 * time.Millisecond
	p := newPorts(t, config.TCP{DrainTimeout: config.Duration{Duration: drain}}, "r1", old1)
	long, lr, name, err := dial(t, p)
	if err != nil || name != "old" {
		t.Fatalf("long connection: %q, %v", name, err)
	}
	defer long.Close()
	short, _, _, err := dial(t, p)
	if err != nil {
		t.Fatal(err)
	}

	addInstance(p, "r2", 1, new1)
	p.Route(map[string]int{"r2": 100})
	if got := who(t, p); got != "new" {
		t.Fatalf("after the switch a new connection went to %q", got)
	}

	start := time.Now()
	done := make(chan DrainResult)
	go func() { done <- p.DrainRelease(context.Background(), "r1") }()
	short.Close() // ends by itself during the drain
	// The long one still works during the drain.
	if _, err := long.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := lr.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo during the drain: %q, %v", line, err)
	}
	res := <-done
	took := time.Since(start)
	if took < drain || took > drain+time.Second {
		t.Errorf("drain took %v, want about %v", took, drain)
	}
	if res.Cut != 1 || res.Finished != 1 {
		t.Errorf("drain result %+v, want 1 finished, 1 cut", res)
	}
	if _, err := lr.ReadString('\n'); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("the long connection after the drain: read %v, want it closed", err)
	}
	if got := who(t, p); got != "new" {
		t.Errorf("after the drain a new connection went to %q", got)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "closed"))
}

// TestDrainEndsEarlyWhenIdle: a release with nothing open drains at once.
func TestDrainEndsEarlyWhenIdle(t *testing.T) {
	a := newInstanceServer(t, "a")
	p := newPorts(t, config.TCP{DrainTimeout: config.Duration{Duration: time.Minute}}, "r1", a)
	start := time.Now()
	p.DrainRelease(context.Background(), "r1")
	if took := time.Since(start); took > time.Second {
		t.Errorf("drain of an idle release took %v", took)
	}
}

// TestHTTPHealth: an entry with health "http" follows SetHTTPHealthy.
func TestHTTPHealth(t *testing.T) {
	a, b := newInstanceServer(t, "a"), newInstanceServer(t, "b")
	p := newPorts(t, config.TCP{Health: "http"}, "r1", a, b)
	if got := who(t, p); got != "a" {
		t.Fatalf("got %q, want a", got)
	}
	p.SetHTTPHealthy("r1-1", false)
	if got := who(t, p); got != "b" {
		t.Errorf("with a out of HTTP rotation got %q, want b", got)
	}
}

// TestNoGoroutineLeft: after connections of every kind and Close, the
// goroutines are back to where they were.
func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		a := newInstanceServer(t, "a")
		p := New(Options{Entries: []config.TCP{{Listen: "127.0.0.1:0", PortEnv: "P", Balance: "first", Health: "tcp",
			ConnectTimeout: config.Duration{Duration: time.Second}, DrainTimeout: config.Duration{Duration: time.Second}}}})
		lns, err := Listen(p.Entries())
		if err != nil {
			t.Fatal(err)
		}
		p.Serve(lns)
		addInstance(p, "r1", 1, a)
		p.Route(map[string]int{"r1": 1})
		var open []net.Conn
		for range 5 {
			c, _, _, err := dial(t, p)
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, c)
		}
		c, _, _, _ := dial(t, p)
		c.CloseWrite()
		p.Close()
		for _, c := range open {
			c.Close()
		}
		c.Close()
		a.kill()
	}()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// BenchmarkForward measures bytes through an entry: b.N MiB from the
// client to a sink instance, against the same copy without the proxy.
func BenchmarkForward(b *testing.B) {
	sink := func(tb testing.TB) *instanceServer {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					fmt.Fprintf(c, "sink\n")
					n, _ := io.Copy(io.Discard, c)
					fmt.Fprintf(c, "%d\n", n)
				}()
			}
		}()
		return &instanceServer{name: "sink", ln: ln}
	}
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	run := func(b *testing.B, addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(chunk)))
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		c.(*net.TCPConn).CloseWrite()
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("direct", func(b *testing.B) {
		s := sink(b)
		defer s.ln.Close()
		run(b, s.ln.Addr().String())
	})
	b.Run("proxied", func(b *testing.B) {
		s := sink(b)
		defer s.ln.Close()
		p := newPorts(b, config.TCP{}, "r1", s)
		run(b, p.Addr(0).String())
	})
}

// TestHoldUntilAnInstanceTakesIt: a connection that arrives while no
// instance is routed (a stop-first switch) is held and reaches the
// instance routed next; one held past the hold timeout is closed.
func TestHoldUntilAnInstanceTakesIt(t *testing.T) {
	holding := func(hold time.Duration) *Ports {
		p := New(Options{Entries: []config.TCP{{Listen: "127.0.0.1:0", PortEnv: "P", Balance: "first", Health: "tcp",
			ConnectTimeout: config.Duration{Duration: time.Second}, DrainTimeout: config.Duration{Duration: time.Second}}},
			HoldTimeout: hold})
		lns, err := Listen(p.Entries())
		if err != nil {
			t.Fatal(err)
		}
		p.Serve(lns)
		t.Cleanup(p.Close)
		return p
	}
	p := holding(3 * time.Second)

	type result struct {
		name string
		err  error
		took time.Duration
	}
	got := make(chan result, 1)
	start := time.Now()
	go func() {
		c, _, name, err := dialRaw(p)
		if c != nil {
			c.Close()
		}
		got <- result{name, err, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond)
	addInstance(p, "r2", 1, newInstanceServer(t, "new"))
	p.Route(map[string]int{"r2": 1})
	r := <-got
	if r.err != nil || r.name != "new" {
		t.Fatalf("held connection: %q, %v", r.name, r.err)
	}
	if r.took < 250*time.Millisecond || r.took > 2*time.Second {
		t.Errorf("held connection answered after %v, want soon after the route at 300ms", r.took)
	}

	p = holding(200 * time.Millisecond)
	addInstance(p, "r2", 1, newInstanceServer(t, "unrouted"))
	start = time.Now()
	c, _, _, err := dialRaw(p)
	if err == nil {
		t.Error("a connection nothing takes was answered")
	}
	if c != nil {
		c.Close()
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("unroutable connection closed after %v, want the hold timeout (200ms)", took)
	}
}

// TestNoConnectionLandsOnADrainedInstance: a connection that read the
// routing table before a switch and connects to an old instance after
// that instance's drain ended (so its stop would cut it) goes to the new
// release instead.
func TestNoConnectionLandsOnADrainedInstance(t *testing.T) {
	old1, new1 := newInstanceServer(t, "old"), newInstanceServer(t, "new")
	p := newPorts(t, config.TCP{DrainTimeout: config.Duration{Duration: time.Minute}}, "r1", old1)
	e := p.entries[0]
	before := e.table.Load() // an accept routing just now

	addInstance(p, "r2", 1, new1)
	p.Route(map[string]int{"r2": 100})
	if res := p.DrainRelease(context.Background(), "r1"); res.Finished+res.Cut != 0 {
		t.Fatalf("drain of an idle release: %+v", res)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(2 * time.Second)
		}
	}()
	cc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c, b, _, _ := e.try(before, cc.(*net.TCPConn))
	if c != nil {
		defer c.close()
		if b.release == "r1" {
			t.Errorf("a connection routed before the switch went to %s after its drain ended", b.id)
		}
	}
	// The connection the accept then makes goes to the new release.
	c, b = e.connect(cc.(*net.TCPConn))
	if c == nil || b.release != "r2" {
		t.Fatalf("connect after the drain: %v", b)
	}
	c.close()
}

// TestShutdownGivesEachEntryItsDrain: at a daemon's exit (an upgrade:
// the next daemon takes the new connections) each entry's open
// connections get that entry's own drain_timeout, then are closed.
// Before, every entry waited for the longest one, and the daemon's
// shutdown deadline cut them all earlier still.
func TestShutdownGivesEachEntryItsDrain(t *testing.T) {
	const short, long = 300 * time.Millisecond, 1500 * time.Millisecond
	sa, sb := newInstanceServer(t, "a"), newInstanceServer(t, "b")
	entry := func(port string, drain time.Duration) config.TCP {
		return config.TCP{Listen: "127.0.0.1:0", PortEnv: port, Balance: "first", Health: "tcp",
			ConnectTimeout: config.Duration{Duration: time.Second}, DrainTimeout: config.Duration{Duration: drain}}
	}
	p := New(Options{Entries: []config.TCP{entry("A", short), entry("B", long)}, Health: config.Health{
		Interval: config.Duration{Duration: 50 * time.Millisecond}, Timeout: config.Duration{Duration: time.Second}, HealthyAfter: 1, UnhealthyAfter: 1,
	}})
	lns, err := Listen(p.Entries())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Serve(lns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	p.Add(Instance{ID: "r1-1", Release: "r1", Number: 1, Ports: map[string]int{"A": sa.port(), "B": sb.port()}})
	p.Route(map[string]int{"r1": 100})
	dialEntry := func(i int, want string) (net.Conn, *bufio.Reader) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", p.Addr(i).String(), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(c)
			name, err := r.ReadString('\n')
			if err == nil && strings.TrimSpace(name) == want {
				return c, r
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("entry %d: got %q, %v; want %s", i, name, err, want)
			}
			time.Sleep(20 * time.Millisecond) // not healthy yet: held, then closed
		}
	}
	ca, ra := dialEntry(0, "a")
	defer ca.Close()
	cb, rb := dialEntry(1, "b")
	defer cb.Close()

	start := time.Now()
	done := make(chan DrainResult, 1)
	go func() { done <- p.Shutdown(context.Background()) }()
	echo := func(c net.Conn, r *bufio.Reader) error {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err == nil && line != "ping\n" {
			err = fmt.Errorf("echo %q", line)
		}
		return err
	}
	if err := echo(ca, ra); err != nil {
		t.Fatalf("entry A's connection at the start of the shutdown: %v", err)
	}
	ca.SetDeadline(time.Now().Add(long))
	if _, err := ra.ReadString('\n'); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("entry A's connection: read %v, want it closed at its drain_timeout", err)
	}
	if took := time.Since(start); took < short || took > short+700*time.Millisecond {
		t.Errorf("entry A's connection closed after %v, want about its drain_timeout %v", took, short)
	}
	time.Sleep(time.Until(start.Add(long - 300*time.Millisecond)))
	if err := echo(cb, rb); err != nil {
		t.Errorf("entry B's connection %v into the shutdown, before its drain_timeout %v: %v", time.Since(start).Round(time.Millisecond), long, err)
	}
	res := <-done
	if took := time.Since(start); took < long || took > long+time.Second {
		t.Errorf("Shutdown took %v, want about the longest drain_timeout %v", took, long)
	}
	if res.Cut != 2 || res.Finished != 0 {
		t.Errorf("Shutdown's result %+v, want 2 cut", res)
	}
	cb.SetDeadline(time.Now().Add(time.Second))
	if _, err := rb.ReadString('\n'); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("entry B's connection after Shutdown: read %v, want it closed", err)
	}
}
