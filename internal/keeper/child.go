package keeper

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is one daemon process the keeper started.
type child struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time
	ctl     *conn
	exited  chan struct{} // closed once the process was waited for
	waitErr error         // the exit, valid after exited is closed
	version string        // from its "prepared" message
	failed  string        // the reason of its last "failed" message
}

// socket is one listening socket the keeper holds for its daemons.
type socket struct {
	name string // as in LISTEN_FDNAMES: "proxy", "preview", "tcp-…" (TCPSocketName)
	file *os.File
	// passed is set on a socket the service manager passed: it outlives
	// the keeper.
	passed bool
}

// startChild starts exe with args as a daemon that inherits socks and a
// fresh control link.
func startChild(exe string, args []string, dataDir string, socks []socket) (*child, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control link: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "keeper"), os.NewFile(uintptr(fds[1]), "daemon")
	defer theirs.Close() // the child has its copy
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		theirs.Close()
		return nil, fmt.Errorf("control link: %w", err)
	}
	var names []string
	var files []*os.File
	for _, s := range socks {
		names = append(names, s.name)
		files = append(files, s.file)
	}
	files = append(files, theirs)
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = exe
	cmd.Env = append(childEnv(os.Environ()),
		"LISTEN_PID="+strconv.Itoa(os.Getpid()),
		"LISTEN_FDS="+strconv.Itoa(len(socks)),
		"LISTEN_FDNAMES="+strings.Join(names, ":"),
		EnvFD+"="+strconv.Itoa(3+len(socks)),
		EnvDataDir+"="+dataDir,
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = files
	if err := cmd.Start(); err != nil {
		c.Close()
		return nil, fmt.Errorf("start daemon %s: %w", exe, err)
	}
	ch := &child{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), ctl: newConn(c), exited: make(chan struct{})}
	go func() {
		ch.waitErr = cmd.Wait()
		close(ch.exited)
	}()
	return ch, nil
}

// childEnv is env without the variables the keeper sets for its child.
func childEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", EnvFD, EnvDataDir:
			continue
		}
		out = append(out, kv)
	}
	return out
}

// errExited is returned by await when the child ended first.
var errExited = errors.New("exited")

// await waits for one of words from the child, for at most timeout.
// Other messages are skipped ("failed" is remembered for exitReason).
// What a child said before it died still counts: "ready" and then a
// crash is a daemon that was ready (and is restarted as a crash).
func (c *child) await(timeout time.Duration, words ...string) (Msg, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	exited := c.exited
	for {
		select {
		case m, ok := <-c.ctl.msgs:
			if !ok {
				// EOF: the child is exiting or closed its link; its
				// exit says why.
				select {
				case <-c.exited:
				case <-t.C:
					return Msg{}, fmt.Errorf("no answer within %s", timeout)
				}
				return Msg{}, errExited
			}
			c.note(m)
			for _, w := range words {
				if m.Word == w {
					return m, nil
				}
			}
		case <-exited:
			// Read on to the EOF its death caused.
			exited = nil
		case <-t.C:
			return Msg{}, fmt.Errorf("no answer within %s", timeout)
		}
	}
}

func (c *child) note(m Msg) {
	switch m.Word {
	case MsgPrepared:
		c.version = m.Arg
	case MsgFailed:
		c.failed = m.Arg
	}
}

// exitReason says how an exited child ended, with its own reason if it
// gave one.
func (c *child) exitReason() string {
	// Drain what it said before it went; its end closed at its exit.
	t := time.NewTimer(time.Second)
	defer t.Stop()
drain:
	for {
		select {
		case m, ok := <-c.ctl.msgs:
			if !ok {
				break drain
			}
			c.note(m)
		case <-t.C:
			break drain
		}
	}
	how := "exit status 0"
	if c.waitErr != nil {
		how = c.waitErr.Error()
	}
	if c.failed != "" {
		return c.failed + " (" + how + ")"
	}
	return how
}

// killed reports whether the exited child was ended by a signal (kill -9,
// a crash), not by its own exit.
func (c *child) killed() bool {
	if c.cmd == nil || c.cmd.ProcessState == nil {
		return false
	}
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// cleanExit reports whether the exited child ended with status 0.
func (c *child) cleanExit() bool { return c.waitErr == nil }

// signal sends sig to the child unless it already exited.
func (c *child) signal(sig syscall.Signal) {
	select {
	case <-c.exited:
	default:
		c.cmd.Process.Signal(sig) //nolint:errcheck // it may have exited meanwhile
	}
}

// stop sends SIGTERM, waits up to grace, then kills.
func (c *child) stop(grace time.Duration) {
	c.signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		c.signal(syscall.SIGKILL)
		<-c.exited
	}
}

// kill kills the child and waits for it.
func (c *child) kill() {
	c.signal(syscall.SIGKILL)
	<-c.exited
}

var execLookPath = exec.LookPath
