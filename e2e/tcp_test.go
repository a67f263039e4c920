package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
)

// tcpEnv is an env whose app has one TCP port ([[app.tcp]]) on the demo
// app's echo listener.
func tcpEnv(t *testing.T, balance, drain string, more ...string) (*env, string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", pickPort(t))
	e := newEnv(t, settings{instances: 2, extra: strings.Join(more, "\n") + fmt.Sprintf(`
[[app.tcp]]
listen = %q
port_env = "DEMO_TCP_PORT"
balance = %q
drain_timeout = %q
connect_timeout = "1s"
`, addr, balance, drain)})
	return e, addr
}

// tcpHello is the demo app's first line: who took the connection.
type tcpHello struct {
	version, instance string
	pid               int
}

// tcpDial connects to addr and reads the demo app's hello line.
func tcpDial(addr string) (net.Conn, *bufio.Reader, tcpHello, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, nil, tcpHello{}, err
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, nil, tcpHello{}, fmt.Errorf("read hello: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "demo" {
		c.Close()
		return nil, nil, tcpHello{}, fmt.Errorf("hello %q", line)
	}
	pid, _ := strconv.Atoi(f[3])
	return c, r, tcpHello{f[1], f[2], pid}, nil
}

// tcpEcho sends a line and reads it back.
func tcpEcho(c net.Conn, r *bufio.Reader, msg string) error {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// TestTCPPrimaryBackup is the Clojars setup: two instances, balance
// "first". Every connection goes to instance 1; kill -9 it, and new
// connections (50/s for 5 s) go to instance 2 with none refused.
func TestTCPPrimaryBackup(t *testing.T) {
	e, addr := tcpEnv(t, "first", "5s")
	v1 := e.release("v1", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	var primary tcpHello
	for i := range 10 {
		c, _, h, err := tcpDial(addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		c.Close()
		if i > 0 && h.instance != primary.instance {
			t.Fatalf("connection %d went to %s, the one before to %s: balance first must keep one instance", i, h.instance, primary.instance)
		}
		primary = h
	}
	if !strings.HasSuffix(primary.instance, "-1") {
		t.Fatalf("connections went to %s, want the instance numbered 1", primary.instance)
	}
	st := e.status()
	if len(st.TCP) != 1 || st.TCP[0].Next != primary.instance {
		t.Errorf("status tcp = %+v, want new connections → %s", st.TCP, primary.instance)
	}
	if out, _, code := e.run("status"); code != 0 || !strings.Contains(out, "): new connections → "+primary.instance) {
		t.Errorf("cutover status (exit %d) does not say where new TCP connections go:\n%s", code, out)
	}

	if err := syscall.Kill(primary.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var failed, toBackup, toPrimary int
	var firstErr error
	tick := time.NewTicker(20 * time.Millisecond) // 50/s
	defer tick.Stop()
	for i := 0; i < 250 && time.Since(killed) < 10*time.Second; i++ {
		<-tick.C
		c, _, h, err := tcpDial(addr)
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("connection %d, %s after the kill: %w", i, time.Since(killed).Round(time.Millisecond), err)
			}
			continue
		}
		c.Close()
		switch {
		case h.instance == primary.instance && h.pid == primary.pid:
			t.Fatalf("connection %d reached the killed process %d", i, h.pid)
		case h.instance == primary.instance:
			toPrimary++ // restarted by the supervisor and healthy again
		default:
			toBackup++
		}
		if i < 10 && h.instance == primary.instance {
			t.Errorf("connection %d, right after the kill, went to %s (restarted already?)", i, h.instance)
		}
	}
	t.Logf("after kill -9 of %s: %d connections to the backup, %d to the restarted primary, %d failed", primary.instance, toBackup, toPrimary, failed)
	if failed > 0 {
		t.Errorf("%d connections failed after the primary was killed; first: %v", failed, firstErr)
	}
	if toBackup == 0 {
		t.Error("no connection went to the backup")
	}
}

// TestTCPDeployUnderLoad: a deploy under 100 new connections/s with 20
// long-lived ones open: no new connection fails, new ones reach the new
// release from the switch on, and the long ones keep echoing until the
// TCP drain_timeout after the switch, then are closed.
func TestTCPDeployUnderLoad(t *testing.T) {
	const drain = 3 * time.Second
	e, addr := tcpEnv(t, "first", drain.String())
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}

	type longConn struct {
		closedAt time.Time
		lastOK   time.Time
		version  string
	}
	longs := make([]*longConn, 20)
	var wg sync.WaitGroup
	stopLong := make(chan struct{})
	for i := range longs {
		c, r, h, err := tcpDial(addr)
		if err != nil {
			t.Fatalf("long connection %d: %v", i, err)
		}
		l := &longConn{version: h.version}
		longs[i] = l
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for {
				if err := tcpEcho(c, r, "still here"); err != nil {
					l.closedAt = time.Now()
					return
				}
				l.lastOK = time.Now()
				select {
				case <-stopLong:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}

	var mu sync.Mutex
	var failed, total int
	var firstErr error
	seen := map[string]int{}
	var lastV1 time.Time
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(10 * time.Millisecond) // 100/s
		defer tick.Stop()
		var lwg sync.WaitGroup
		defer lwg.Wait()
		for n := 0; n < 3000; n++ { // at most 30 s
			select {
			case <-stopLoad:
				return
			case <-tick.C:
			}
			lwg.Add(1)
			go func() {
				defer lwg.Done()
				c, r, h, err := tcpDial(addr)
				if err == nil {
					err = tcpEcho(c, r, "hi")
					c.Close()
				}
				mu.Lock()
				defer mu.Unlock()
				total++
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				seen[h.version]++
				if h.version == "v1" {
					lastV1 = time.Now()
				}
			}()
		}
	}()

	time.Sleep(500 * time.Millisecond)
	_, sw, err := e.deploy(deploy.Request{Source: v2})
	if err != nil {
		t.Fatalf("deploy v2: %v", err)
	}
	time.Sleep(time.Second)
	close(stopLoad)
	<-loadDone
	close(stopLong)
	wg.Wait()

	mu.Lock()
	t.Logf("new connections: %d, %d failed, by version %v; switch %s → %s", total, failed, seen, sw.began.Format("15:04:05.000"), sw.ended.Format("15:04:05.000"))
	if failed > 0 {
		t.Errorf("%d of %d new connections failed; first: %v", failed, total, firstErr)
	}
	if seen["v2"] == 0 {
		t.Error("no new connection reached v2")
	}
	if !sw.ended.IsZero() && lastV1.After(sw.ended.Add(200*time.Millisecond)) {
		t.Errorf("a new connection reached v1 at %s, after the switch ended at %s", lastV1.Format("15:04:05.000"), sw.ended.Format("15:04:05.000"))
	}
	mu.Unlock()

	for i, l := range longs {
		if l.version != "v1" {
			t.Errorf("long connection %d was on %s, want v1", i, l.version)
			continue
		}
		if l.closedAt.IsZero() {
			t.Errorf("long connection %d still open after the deploy: drain_timeout is %s", i, drain)
			continue
		}
		kept := l.lastOK.Sub(sw.began)
		if kept < drain-500*time.Millisecond || l.closedAt.Sub(sw.began) > drain+5*time.Second {
			t.Errorf("long connection %d echoed until %s after the switch began and closed at %s; want until about drain_timeout (%s)",
				i, kept.Round(time.Millisecond), l.closedAt.Sub(sw.began).Round(time.Millisecond), drain)
		}
	}
	if i := len(longs) - 1; longs[i].closedAt.After(time.Time{}) {
		t.Logf("long connections: the last echoed %s after the switch began, closed %s after it",
			longs[i].lastOK.Sub(sw.began).Round(time.Millisecond), longs[i].closedAt.Sub(sw.began).Round(time.Millisecond))
	}
}

// TestTCPDaemonKilled: kill -9 of the daemon. The keeper keeps the TCP
// socket, so new connections wait in its backlog rather than being
// refused, and the next daemon adopts the instances with their TCP
// ports: the same processes answer, with none restarted.
func TestTCPDaemonKilled(t *testing.T) {
	e, addr := tcpEnv(t, "first", "5s")
	v1 := e.release("v1", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	c, _, before, err := tcpDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	old := e.killDaemon()
	killed := time.Now()
	var failed, n int
	var firstErr error
	for time.Since(killed) < 3*time.Second {
		c, _, h, err := tcpDial(addr)
		n++
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		c.Close()
		if h.pid != before.pid {
			t.Errorf("connection %d went to %s pid %d, want the adopted %s pid %d", n, h.instance, h.pid, before.instance, before.pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.waitNewDaemon(old)
	t.Logf("%d connections during and after the daemon's restart, %d failed", n, failed)
	if failed > 0 {
		t.Errorf("%d of %d connections failed across the daemon's restart; first: %v", failed, n, firstErr)
	}
	st := e.status()
	if len(st.TCP) != 1 || st.TCP[0].Next != before.instance {
		t.Errorf("status tcp after the restart = %+v, want new connections → %s", st.TCP, before.instance)
	}
}

// TestTCPUpgrade: `cutover upgrade` while new TCP connections arrive
// (50/s) and one stays open: no new connection fails (the keeper's socket
// passes to the new daemon), and the open one, which the old daemon
// carries, keeps echoing after the new daemon took over, until the old
// daemon's wait of drain_timeout for it ends.
func TestTCPUpgrade(t *testing.T) {
	e, addr := tcpEnv(t, "first", "2s")
	v1 := e.release("v1", "")
	exe := e.ownBinary()
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	long, lr, _, err := tcpDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()

	var mu sync.Mutex
	var failed, total int
	var firstErr error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < 1500; n++ { // at most 30 s
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			c, r, _, err := tcpDial(addr)
			if err == nil {
				err = tcpEcho(c, r, "hi")
				c.Close()
			}
			mu.Lock()
			total++
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
			mu.Unlock()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	old := e.daemonPID()
	installBinary(t, bin, exe)
	if out, errOut, code := e.run("upgrade"); code != 0 {
		t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	upgraded := time.Now()
	if err := tcpEcho(long, lr, "after the upgrade"); err != nil {
		t.Errorf("the connection open before the upgrade: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-done
	waitExit(t, old)
	t.Logf("%d new connections across the upgrade, %d failed; the old daemon exited %s after the upgrade", total, failed, time.Since(upgraded).Round(time.Millisecond))
	if failed > 0 {
		t.Errorf("%d of %d new connections failed across the upgrade; first: %v", failed, total, firstErr)
	}
}

// TestTCPUpgradeKeepsDrainTimeout: a connection open through the old
// daemon at `cutover upgrade` lasts its port's drain_timeout (33 s here),
// then is closed and the old daemon exits. Before, the old daemon's
// shutdown deadline cut it about 20 s after the upgrade, and the keeper
// killed that daemon 30 s after it anyway.
func TestTCPUpgradeKeepsDrainTimeout(t *testing.T) {
	const drain = 33 * time.Second
	e, addr := tcpEnv(t, "first", drain.String())
	v1 := e.release("v1", "")
	exe := e.ownBinary()
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	long, lr, _, err := tcpDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	old := e.daemonPID()
	installBinary(t, bin, exe)
	if out, errOut, code := e.run("upgrade"); code != 0 {
		t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	upgraded := time.Now()
	if c, r, _, err := tcpDial(addr); err != nil {
		t.Errorf("a new connection after the upgrade: %v", err)
	} else {
		if err := tcpEcho(c, r, "new"); err != nil {
			t.Errorf("a new connection after the upgrade: %v", err)
		}
		c.Close()
	}
	// Past the old cut (20 s), and past the keeper's old kill (30 s).
	for _, at := range []time.Duration{22 * time.Second, drain - 2*time.Second} {
		time.Sleep(time.Until(upgraded.Add(at)))
		if err := tcpEcho(long, lr, "still here"); err != nil {
			t.Fatalf("the connection open before the upgrade, %v after it (drain_timeout %v): %v", time.Since(upgraded).Round(time.Millisecond), drain, err)
		}
	}
	if ppid(old) == 0 {
		t.Errorf("the old daemon %d exited before the drain_timeout of its open connection", old)
	}
	long.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = lr.ReadString('\n')
	closed := time.Since(upgraded)
	if err == nil || isTimeout(err) {
		t.Fatalf("the connection open before the upgrade, %v after it: read %v, want it closed at drain_timeout %v", closed.Round(time.Millisecond), err, drain)
	}
	if closed < drain-time.Second || closed > drain+3*time.Second {
		t.Errorf("the connection open before the upgrade was closed %v after it, want about drain_timeout %v", closed.Round(time.Millisecond), drain)
	}
	waitExit(t, old)
	t.Logf("the open connection was closed %v after the upgrade; the old daemon exited %v after it", closed.Round(time.Millisecond), time.Since(upgraded).Round(time.Millisecond))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestTCPStopFirst: a stop-first deploy stops the old release before the
// new one boots; new TCP connections that arrive meanwhile (100/s) are
// held, as requests are, and reach the new release: none fails.
func TestTCPStopFirst(t *testing.T) {
	e, addr := tcpEnv(t, "first", "5s", "[deploy]\nstrategy = \"stop-first\"\n")
	v1, v2 := e.release("v1", ""), e.release("v2", "DEMO_BOOT_DELAY=1s\n")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var failed, total int
	var firstErr error
	var longest time.Duration
	seen := map[string]int{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		defer wg.Wait()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < 3000; n++ { // at most 30 s
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				c, r, h, err := tcpDialHeld(addr, 15*time.Second)
				if err == nil {
					err = tcpEcho(c, r, "hi")
					c.Close()
				}
				mu.Lock()
				defer mu.Unlock()
				total++
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				seen[h.version]++
				longest = max(longest, time.Since(start))
			}()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatalf("deploy v2: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	t.Logf("new connections: %d, %d failed, by version %v, longest %s", total, failed, seen, longest.Round(time.Millisecond))
	if failed > 0 {
		t.Errorf("%d of %d new connections failed across a stop-first deploy; first: %v", failed, total, firstErr)
	}
	if seen["v2"] == 0 {
		t.Error("no new connection reached v2")
	}
}

// TestTCPStopFirstWaitsForOpenConnections: a connection open when a
// stop-first deploy begins gets its port's drain_timeout in the hold
// step, as requests in flight get proxy.drain_timeout, before the old
// instances stop: it goes on working for a second, closes by itself, and
// the deploy then goes on.
func TestTCPStopFirstWaitsForOpenConnections(t *testing.T) {
	e, addr := tcpEnv(t, "first", "5s", "[deploy]\nstrategy = \"stop-first\"\n")
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	c, r, h, err := tcpDial(addr)
	if err != nil || h.version != "v1" {
		t.Fatalf("dial: %v (%+v)", err, h)
	}
	defer c.Close()
	deployed := make(chan error, 1)
	start := time.Now()
	go func() { _, _, err := e.deploy(deploy.Request{Source: v2}); deployed <- err }()
	for i := range 4 {
		time.Sleep(250 * time.Millisecond)
		if err := tcpEcho(c, r, fmt.Sprintf("still here %d", i)); err != nil {
			t.Fatalf("the connection open before the stop-first deploy, %v into it: %v", time.Since(start).Round(time.Millisecond), err)
		}
	}
	c.Close()
	if err := <-deployed; err != nil {
		t.Fatalf("deploy v2: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the deploy took %v: it waited for the connection past its close", d.Round(time.Millisecond))
	}
	if _, _, h, err := tcpDial(addr); err != nil || h.version != "v2" {
		t.Errorf("after the deploy: %v (%+v), want v2", err, h)
	}
}

// tcpDialHeld is tcpDial with a longer wait for the hello: a connection
// held while no instance runs gets it once one takes it.
func tcpDialHeld(addr string, wait time.Duration) (net.Conn, *bufio.Reader, tcpHello, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, nil, tcpHello{}, err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, nil, tcpHello{}, fmt.Errorf("read hello: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "demo" {
		c.Close()
		return nil, nil, tcpHello{}, fmt.Errorf("hello %q", line)
	}
	pid, _ := strconv.Atoi(f[3])
	return c, r, tcpHello{f[1], f[2], pid}, nil
}

// TestTCPRolling: a rolling deploy, one instance per batch. Each retiring
// batch's TCP connections get drain_timeout before its instance stops,
// and new connections (50/s) never fail.
func TestTCPRolling(t *testing.T) {
	const drain = 2 * time.Second
	e, addr := tcpEnv(t, "first", drain.String(), "[deploy]\nstrategy = \"rolling\"\nbatch = 1\n")
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	long, lr, h, err := tcpDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	longClosed := make(chan time.Time, 1)
	go func() {
		for tcpEcho(long, lr, "still here") == nil {
			time.Sleep(50 * time.Millisecond)
		}
		longClosed <- time.Now()
	}()

	var mu sync.Mutex
	var failed, total int
	var firstErr error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < 1500; n++ { // at most 30 s
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			c, r, _, err := tcpDial(addr)
			if err == nil {
				err = tcpEcho(c, r, "hi")
				c.Close()
			}
			mu.Lock()
			total++
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
			mu.Unlock()
		}
	}()
	began := time.Now()
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatalf("deploy v2: %v", err)
	}
	ended := time.Now()
	close(stop)
	<-done
	var closed time.Time
	select {
	case closed = <-longClosed:
	case <-time.After(5 * time.Second):
		t.Fatalf("the connection to %s is still open after the deploy", h.instance)
	}
	t.Logf("deploy took %s; the connection to %s closed %s after it began; %d new connections, %d failed",
		ended.Sub(began).Round(time.Millisecond), h.instance, closed.Sub(began).Round(time.Millisecond), total, failed)
	if closed.Sub(began) < drain {
		t.Errorf("the connection to %s closed %s after the deploy began, before drain_timeout (%s)", h.instance, closed.Sub(began).Round(time.Millisecond), drain)
	}
	if failed > 0 {
		t.Errorf("%d of %d new connections failed; first: %v", failed, total, firstErr)
	}
}
