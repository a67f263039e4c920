package keeper

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/datadir"
)

// Options configure Run.
type Options struct {
	// Exe is the binary each daemon is started from, an absolute path
	// resolved when `cutover serve` started (see ResolveExe).
	Exe string
	// Args are the daemon's arguments (without the program name): the
	// serve command line as given.
	Args []string
	// DataDir holds keeper.lock and keeper.sock.
	DataDir string
	// ProxyListen, PreviewListen and TLSListen are the addresses to listen
	// on when no socket was passed by systemd; PreviewListen or TLSListen
	// empty means none.
	ProxyListen, PreviewListen, TLSListen string
	// TCPListen are the listen addresses of the apps' [[app.tcp]] ports;
	// each socket is passed as TCPSocketName(addr).
	TCPListen []string
	// ConfigPath names the config in error messages.
	ConfigPath string
	// ReadyTimeout bounds how long a new daemon may take to be ready.
	// Zero means 60 s.
	ReadyTimeout time.Duration
	Logger       *slog.Logger
}

// stopGrace bounds how long a stopping daemon may take before it is killed;
// an old daemon after an upgrade gets the drain it announced on top (see
// ReleasedArg).
const stopGrace = 30 * time.Second

// releaseTimeout bounds the old daemon's answer to "release" and "resume".
const releaseTimeout = 30 * time.Second

// stopAnswerTimeout bounds a daemon's answer to "stop"; nothing it waits
// for can hold it (it refuses no "stop").
const stopAnswerTimeout = 5 * time.Second

// closedTimeout bounds how long an upgrade waits for the old daemon to say
// it stopped accepting ("closed") before answering: a daemon of an older
// version never says it.
const closedTimeout = 2 * time.Second

// Result is what an upgrade did.
type Result struct {
	OldPID     int    `json:"old_pid"`
	OldVersion string `json:"old_version"`
	NewPID     int    `json:"new_pid"`
	NewVersion string `json:"new_version"`
}

// upgradeReq asks the owner loop for an upgrade; progress lines go to
// say, the outcome to done.
type upgradeReq struct {
	say  func(string)
	done chan upgradeOutcome
}

type upgradeOutcome struct {
	res Result
	err error
}

// keeper is the state the owner loop (Run) owns.
type keeper struct {
	opts  Options
	log   *slog.Logger
	socks []socket
	reqs  chan upgradeReq
	done  chan struct{} // closed when Run returns: no request is served then
}

// Run is the keeper: it holds the sockets, starts the daemon and keeps one
// running until ctx ends (SIGTERM/SIGINT) or the daemon stops on purpose.
func Run(ctx context.Context, opts Options) error {
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &keeper{opts: opts, log: log.With("component", "keeper"), reqs: make(chan upgradeReq), done: make(chan struct{})}
	defer close(k.done)
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := datadir.Lock(filepath.Join(opts.DataDir, "keeper.lock"))
	if err != nil {
		return fmt.Errorf("another `cutover serve` already serves %s: %w", opts.DataDir, err)
	}
	defer unlock()
	if k.socks, err = k.sockets(); err != nil {
		return err
	}
	defer func() {
		for _, s := range k.socks {
			s.file.Close()
		}
	}()
	ctlPath := filepath.Join(opts.DataDir, "keeper.sock")
	ctlLn, err := datadir.ListenUnix(ctlPath)
	if err != nil {
		return fmt.Errorf("keeper socket %s: %w", ctlPath, err)
	}
	defer ctlLn.Close()
	go k.acceptUpgrades(ctlLn)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// SIGUSR1 is the daemon's (open the access log again, after
	// logrotate): passed on, so that either pid may be signalled.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	cur, err := k.startReady(ctx)
	if err != nil {
		return err
	}
	k.log.Info("daemon started", "keeper_pid", os.Getpid(), "pid", cur.pid, "version", cur.version, "exe", opts.Exe)
	var bo backoff
	for {
		select {
		case <-ctx.Done():
			if len(k.socks) > 0 && k.socks[0].passed {
				k.stopHandingOver(cur)
				return nil
			}
			k.log.Info("stopping the daemon; instances keep running", "pid", cur.pid)
			// Close the keeper's copies first: a connection that queued
			// in the backlog after the daemon stopped accepting would
			// wait for nobody and be reset when the daemon exits; this
			// way the socket closes with the daemon's drain and a client
			// is refused at once (or, with socket activation, waits for
			// the next `cutover serve`).
			for _, s := range k.socks {
				s.file.Close()
			}
			k.socks = nil
			cur.stop(stopGrace)
			return nil
		case <-cur.exited:
			why := cur.exitReason()
			if cur.cleanExit() {
				k.log.Info("the daemon stopped on purpose; the keeper stops too", "pid", cur.pid)
				return nil
			}
			d := bo.delay(time.Since(cur.started))
			k.log.Error("the daemon died; starting it again", "pid", cur.pid, "err", why, "after", d)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
			next, err := startChild(opts.Exe, opts.Args, opts.DataDir, k.socks)
			if err != nil {
				// The binary is gone or unreadable: keep trying, the
				// sockets hold the clients meanwhile.
				k.log.Error("start the daemon", "err", err)
				cur = &child{exited: closedChan(), waitErr: err, started: time.Now(), ctl: deadConn()}
				continue
			}
			cur = next
			k.log.Info("daemon started", "pid", cur.pid)
		case <-usr1:
			if cur.pid <= 0 {
				continue // no daemon runs (and kill(0) would signal the group)
			}
			if err := syscall.Kill(cur.pid, syscall.SIGUSR1); err != nil {
				k.log.Warn("SIGUSR1: pass it on to the daemon", "pid", cur.pid, "err", err)
			}
		case <-hup:
			k.log.Info("SIGHUP: upgrading the daemon", "exe", opts.Exe)
			next, res, err := k.upgrade(cur, func(s string) { k.log.Info(s) })
			cur = next
			if err != nil {
				k.log.Error("upgrade failed; the old daemon serves on", "err", err)
			} else {
				k.log.Info("upgraded", "old_pid", res.OldPID, "new_pid", res.NewPID, "new_version", res.NewVersion)
			}
		case req := <-k.reqs:
			next, res, err := k.upgrade(cur, req.say)
			cur = next
			req.done <- upgradeOutcome{res, err}
		}
	}
}

// stopHandingOver stops cur when the sockets outlive the keeper (socket
// activation): it tells cur "stop", and once cur stopped supervising and
// unlocked daemon.lock ("released") the keeper exits without waiting for
// it, so that the service manager can start the next `cutover serve` at
// once; cur goes on proxying until that one's daemon serves, then drains
// and exits by itself (see package daemon). A daemon that does not answer
// is stopped as without socket activation.
func (k *keeper) stopHandingOver(cur *child) {
	if err := cur.ctl.send(MsgStop, ""); err == nil {
		_, err = cur.await(stopAnswerTimeout, MsgReleased)
		if err == nil {
			k.log.Info("the daemon stopped supervising; it proxies until the next `cutover serve` serves, then exits; instances keep running", "pid", cur.pid)
			return
		}
		if !errors.Is(err, errExited) {
			k.log.Warn("the daemon did not hand over; stopping it", "pid", cur.pid, "err", err)
		}
	}
	cur.stop(stopGrace)
}

// startReady starts the first daemon and waits until it serves.
func (k *keeper) startReady(ctx context.Context) (*child, error) {
	c, err := startChild(k.opts.Exe, k.opts.Args, k.opts.DataDir, k.socks)
	if err != nil {
		return nil, err
	}
	type got struct {
		m   Msg
		err error
	}
	gc := make(chan got, 1)
	go func() {
		m, err := c.await(k.opts.ReadyTimeout, MsgReady)
		gc <- got{m, err}
	}()
	select {
	case <-ctx.Done():
		c.stop(stopGrace)
		return nil, ctx.Err()
	case g := <-gc:
		switch {
		case errors.Is(g.err, errExited) && c.killed():
			// Killed, not failed: maybe after it began serving; the
			// loop restarts it as any dead daemon.
			return c, nil
		case errors.Is(g.err, errExited):
			return nil, &DaemonError{Why: c.exitReason()}
		case g.err != nil:
			c.kill()
			return nil, fmt.Errorf("the daemon (pid %d) was not ready: %w; killed it", c.pid, g.err)
		}
		return c, nil
	}
}

// DaemonError is a daemon that exited before it was ready; Why is its own
// reason (already printed on its stderr, the keeper's).
type DaemonError struct{ Why string }

func (e *DaemonError) Error() string { return "the daemon exited before it was ready: " + e.Why }

// upgrade hands over from cur to a daemon started from opts.Exe (see the
// package doc); it returns the daemon that serves afterwards.
func (k *keeper) upgrade(cur *child, say func(string)) (*child, Result, error) {
	res := Result{OldPID: cur.pid, OldVersion: cur.version}
	select {
	case <-cur.exited:
		return cur, res, errors.New("no daemon runs right now (it is being restarted); try again")
	default:
	}
	n, err := startChild(k.opts.Exe, k.opts.Args, k.opts.DataDir, k.socks)
	if err != nil {
		return cur, res, err
	}
	say(fmt.Sprintf("started %s as pid %d", k.opts.Exe, n.pid))
	failed := func(stage string, err error) error {
		if errors.Is(err, errExited) {
			return fmt.Errorf("the new daemon (pid %d) exited %s: %s", n.pid, stage, n.exitReason())
		}
		n.kill()
		return fmt.Errorf("the new daemon (pid %d) %s: %v; killed it", n.pid, stage, err)
	}
	if _, err := n.await(k.opts.ReadyTimeout, MsgPrepared); err != nil {
		return cur, res, failed("before it was prepared", err)
	}
	res.NewPID, res.NewVersion = n.pid, n.version
	say(fmt.Sprintf("new daemon pid %d (%s) prepared; asking pid %d to hand over", n.pid, n.version, cur.pid))
	if err := cur.ctl.send(MsgRelease, ""); err != nil {
		n.stop(stopGrace)
		return cur, res, fmt.Errorf("ask the daemon (pid %d) to hand over: %w", cur.pid, err)
	}
	m, err := cur.await(releaseTimeout, MsgReleased, MsgRefused)
	switch {
	case errors.Is(err, errExited):
		// It died meanwhile: the new one takes daemon.lock by itself.
		say(fmt.Sprintf("the old daemon (pid %d) exited meanwhile: %s", cur.pid, cur.exitReason()))
	case err != nil:
		n.stop(stopGrace)
		return cur, res, fmt.Errorf("the daemon (pid %d) did not hand over: %w", cur.pid, err)
	case m.Word == MsgRefused:
		n.stop(stopGrace)
		return cur, res, fmt.Errorf("refused: %s", m.Arg)
	}
	if _, err := n.await(k.opts.ReadyTimeout, MsgReady); err != nil {
		err = failed("before it was ready", err)
		if k.resume(cur) {
			return cur, res, fmt.Errorf("%w; the old daemon (pid %d) serves on", err, cur.pid)
		}
		return n, res, err
	}
	drain := releasedDrain(m.Arg)
	// The old daemon stops accepting before the command returns: a
	// connection opened after it must reach the new daemon.
	old := cur
	old.signal(syscall.SIGTERM)
	if _, err := old.await(closedTimeout, MsgClosed); err != nil && !errors.Is(err, errExited) {
		k.log.Info("the old daemon did not say it stopped accepting; going on", "pid", old.pid, "err", err)
	}
	if drain > 0 {
		say(fmt.Sprintf("new daemon pid %d serves; the old one (pid %d) accepts no more, finishes its requests, lets its open TCP connections end (at most %s) and exits", n.pid, old.pid, drain))
	} else {
		say(fmt.Sprintf("new daemon pid %d serves; the old one (pid %d) accepts no more, finishes its requests and exits", n.pid, old.pid))
	}
	go old.stop(stopGrace + drain) // its exit is expected: nobody restarts it
	return n, res, nil
}

// resume gives supervision back to cur after a failed handover; false if
// cur is gone too (the caller's loop then restarts a daemon).
func (k *keeper) resume(cur *child) bool {
	select {
	case <-cur.exited:
		return false
	default:
	}
	if err := cur.ctl.send(MsgResume, ""); err != nil {
		k.log.Error("resume the old daemon", "pid", cur.pid, "err", err)
		return false
	}
	if _, err := cur.await(releaseTimeout, MsgResumed); err != nil {
		k.log.Error("the old daemon did not resume; restarting it", "pid", cur.pid, "err", err)
		cur.kill()
		return false
	}
	return true
}

// acceptUpgrades serves keeper.sock: one request line ("upgrade"), then
// lines of progress ("log ...") and a last line, "ok {json}" or "error
// message".
func (k *keeper) acceptUpgrades(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed at exit
		}
		go k.serveUpgrade(c)
	}
}

func (k *keeper) serveUpgrade(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a slow client only times out
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "upgrade" {
		fmt.Fprintf(c, "error unknown request %q: want upgrade\n", strings.TrimSpace(line))
		return
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck // cleared on a live conn
	say := func(s string) { fmt.Fprintf(c, "log %s\n", s) }
	req := upgradeReq{say: say, done: make(chan upgradeOutcome, 1)}
	select {
	case k.reqs <- req:
	case <-k.done:
		fmt.Fprintln(c, "error the keeper is stopping")
		return
	}
	out := <-req.done
	if out.err != nil {
		fmt.Fprintf(c, "error %s\n", strings.ReplaceAll(out.err.Error(), "\n", " "))
		return
	}
	b, _ := json.Marshal(out.res) //nolint:errcheck // ints and strings
	fmt.Fprintf(c, "ok %s\n", b)
}

// sockets returns the listening sockets for the daemons: those systemd
// passed to this process, else new ones on the configured addresses.
func (k *keeper) sockets() ([]socket, error) {
	socks, err := passedSockets()
	if err != nil {
		return nil, err
	}
	passed := map[string]bool{}
	if socks != nil {
		k.log.Info("holding the sockets passed by the service manager", "count", len(socks))
		// The service manager's proxy socket wins over proxy.listen; a
		// preview socket it did not pass is opened here, so that it too
		// is held across the daemon's restarts and upgrades.
		passed["proxy"] = true
		for _, s := range socks {
			passed[s.name] = true
		}
	}
	want := []struct{ name, addr, key string }{
		{"proxy", k.opts.ProxyListen, "proxy.listen"},
		{"preview", k.opts.PreviewListen, "proxy.preview_listen"},
		{"tls", k.opts.TLSListen, "proxy.tls_listen"},
	}
	for _, addr := range k.opts.TCPListen {
		want = append(want, struct{ name, addr, key string }{TCPSocketName(addr), addr, "a [[app.tcp]] listen"})
	}
	for _, s := range want {
		if s.addr == "" || passed[s.name] {
			continue
		}
		ln, err := listenRetry(s.addr, k.log)
		if err != nil {
			for _, o := range socks {
				o.file.Close()
			}
			return nil, fmt.Errorf("%s listen on %s (%s in %s): %w", s.name, s.addr, s.key, k.opts.ConfigPath, err)
		}
		f, err := socketFile(ln.(*net.TCPListener), s.name)
		ln.Close() // f holds the socket
		if err != nil {
			return nil, fmt.Errorf("%s socket: %w", s.name, err)
		}
		socks = append(socks, socket{name: s.name, file: f})
	}
	return socks, nil
}

// TCPSocketName is the name under which the socket of a TCP port
// ([[app.tcp]]) listening on addr is passed: "tcp-" and the address with
// each ':' written '_', since LISTEN_FDNAMES separates names with ':'.
func TCPSocketName(addr string) string { return "tcp-" + strings.ReplaceAll(addr, ":", "_") }

// socketFile returns a close-on-exec duplicate of ln's socket as a file
// whose Fd leaves the socket non-blocking. Not ln.File: the file it
// returns puts the socket in blocking mode when exec passes it on (its Fd
// method does), and the mode belongs to the socket, shared with the
// daemons already serving on it: their accept then blocks a thread and
// their Close waits for the next connection — a draining daemon that
// never exits.
func socketFile(ln *net.TCPListener, name string) (*os.File, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	var dup int
	var dupErr error
	if err := rc.Control(func(fd uintptr) {
		dup, dupErr = syscall.Dup(int(fd))
		if dupErr == nil {
			syscall.CloseOnExec(dup)
		}
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, dupErr
	}
	return os.NewFile(uintptr(dup), name), nil
}

// addrInUseWait bounds how long the keeper waits for a port in use: a
// daemon whose keeper was killed closes its listener within moments of
// noticing, and a `cutover serve` started right away should not lose that
// race.
const addrInUseWait = 5 * time.Second

// listenRetry listens on addr, trying again while the port is in use, up
// to addrInUseWait.
func listenRetry(addr string, log *slog.Logger) (net.Listener, error) {
	deadline := time.Now().Add(addrInUseWait)
	for logged := false; ; logged = true {
		ln, err := net.Listen("tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return ln, err
		}
		if !logged {
			log.Warn("address in use; waiting for a stopping daemon to close it", "addr", addr, "for", addrInUseWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// passedSockets takes the sockets of systemd socket activation meant for
// this process, and unsets its variables.
func passedSockets() ([]socket, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	if fds == "" {
		return nil, nil
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("LISTEN_FDS=%q: want a count of descriptors", fds)
	}
	var socks []socket
	for i := 0; i < n; i++ {
		name := "proxy"
		if i == 1 {
			name = "preview"
		}
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		fd := 3 + i
		syscall.CloseOnExec(fd) // passed on to daemons explicitly only
		socks = append(socks, socket{name: name, file: os.NewFile(uintptr(fd), name), passed: true})
	}
	return socks, nil
}

// ResolveExe returns the absolute path the program was started from
// (argv0 as found on $PATH), without following symlinks: an upgrade starts
// whatever binary is at that path then.
func ResolveExe(argv0 string) (string, error) {
	p := argv0
	if !strings.Contains(p, "/") {
		lp, err := execLookPath(p)
		if err != nil {
			return os.Executable()
		}
		p = lp
	}
	return filepath.Abs(p)
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// deadConn is the link of a daemon that never started.
func deadConn() *conn {
	c := &conn{msgs: make(chan Msg)}
	close(c.msgs)
	return c
}
