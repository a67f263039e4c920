// Package e2e builds the real cutover binary and drives it as an operator
// would: `serve` as a separate process, deploys through the CLI or the API
// client, the built-in demo app as the application, and real load from
// vegeta. These tests assert what users care about: zero failed requests.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/acmetest"
	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/pgtest"
)

// bin is the cutover binary built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "cutover-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "cutover")
	build := exec.Command("go", "build", "-o", bin, "../cmd/cutover")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cutover:", err)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	acmetest.Cleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one app under test: a config, a data dir, a daemon.
type env struct {
	t       *testing.T
	dir     string
	cfg     string
	port    int
	daemon  *exec.Cmd
	daemonW chan error
	client  *api.Client
	// activated is the proxy socket passed to daemons started with
	// serveActivated; nil until then.
	activated *os.File
	// exe is the binary `serve` runs from: bin, or this env's own copy
	// (ownBinary) that a test may replace before `cutover upgrade`.
	exe string
}

type settings struct {
	command      string // default: the demo app
	instances    int
	drainTimeout string
	holdTimeout  string // default "10s"
	bootTimeout  string
	extraApp     string
	extraHealth  string // appended to [app.health]
	extra        string // appended to the config file
}

func newEnv(t *testing.T, s settings) *env {
	t.Helper()
	if s.instances == 0 {
		s.instances = 2
	}
	if s.drainTimeout == "" {
		s.drainTimeout = "10s"
	}
	if s.bootTimeout == "" {
		s.bootTimeout = "20s"
	}
	if s.holdTimeout == "" {
		s.holdTimeout = "10s"
	}
	if s.command == "" {
		s.command = fmt.Sprintf("'%s' demo-app", bin)
	}
	dir, err := os.MkdirTemp("", "co-e2e-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, port: pickPort(t), exe: bin}
	e.cfg = filepath.Join(dir, "cutover.toml")
	cfg := fmt.Sprintf(`data_dir = "data"
[app]
name = "e2e"
command = %q
instances = %d
stop_timeout = "5s"
%s
[app.health]
path = "/healthz"
interval = "100ms"
timeout = "1s"
healthy_after = 2
unhealthy_after = 2
boot_timeout = %q
%s

[proxy]
listen = "127.0.0.1:%d"
drain_timeout = %q
hold_timeout = %q
%s
`, s.command, s.instances, s.extraApp, s.bootTimeout, s.extraHealth, e.port, s.drainTimeout, s.holdTimeout, s.extra)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.client = api.NewClient(filepath.Join(dir, "data", "cutover.sock"))
	t.Cleanup(e.cleanup)
	return e
}

// release writes a source directory for version v with extra demo.env lines.
func (e *env) release(v string, demoEnv string) string {
	e.t.Helper()
	d := filepath.Join(e.dir, "src", v)
	if err := os.MkdirAll(d, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "VERSION"), []byte(v+"\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if demoEnv != "" {
		if err := os.WriteFile(filepath.Join(d, "demo.env"), []byte(demoEnv), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return d
}

func (e *env) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", e.port, path) }

// serve starts the daemon and waits until its API answers.
func (e *env) serve() { e.serveWith(nil) }

// serveActivated starts the daemon the way systemd socket activation does:
// the proxy socket is created here, once, and passed as fd 3 with
// LISTEN_FDS/LISTEN_PID. The test keeps its own copy open, as systemd
// would, so the socket outlives any one daemon.
func (e *env) serveActivated() {
	e.t.Helper()
	if e.activated == nil {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", e.port))
		if err != nil {
			e.t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			e.t.Fatal(err)
		}
		ln.Close() // f holds the socket
		e.activated = f
		e.t.Cleanup(func() { f.Close() })
	}
	e.serveWith(e.activated)
}

func (e *env) serveWith(activated *os.File) {
	e.t.Helper()
	logf, err := os.OpenFile(filepath.Join(e.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(e.exe, "serve", "-c", e.cfg)
	if activated != nil {
		// LISTEN_PID must name `cutover serve` itself: sh sets it to its
		// own pid, which exec hands on.
		cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve -c "$1"`, e.exe, e.cfg)
		cmd.ExtraFiles = []*os.File{activated}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	logf.Close()
	e.daemon = cmd
	e.daemonW = make(chan error, 1)
	go func() { e.daemonW <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		// The API answering may be a daemon of a killed keeper, still
		// draining: wait for this keeper's own.
		if _, err := e.client.Status(context.Background()); err == nil && ppid(e.daemonPID()) == cmd.Process.Pid {
			return
		}
		select {
		case err := <-e.daemonW:
			e.daemonW <- err // for the cleanup
			e.t.Fatalf("daemon exited before it answered (%v); log:\n%s", err, e.daemonLog())
		case <-time.After(20 * time.Millisecond):
		}
	}
	e.t.Fatalf("daemon did not answer within 15s; log:\n%s", e.daemonLog())
}

func (e *env) daemonLog() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "daemon.log"))
	return string(b)
}

// killKeeper sends SIGKILL to `cutover serve`, the keeper, only: not to
// its daemon (which then stops by itself) nor to the instances.
func (e *env) killKeeper() {
	e.t.Helper()
	e.daemon.Process.Kill()
	<-e.daemonW
	e.daemon = nil
}

// daemonPID returns the pid of the daemon that holds daemon.lock (the
// keeper's child); 0 if none is recorded.
func (e *env) daemonPID() int {
	b, err := os.ReadFile(filepath.Join(e.dir, "data", "daemon.lock"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// killDaemon sends SIGKILL to the daemon, the keeper's child, and returns
// its pid; the keeper starts another.
func (e *env) killDaemon() int {
	e.t.Helper()
	pid := e.daemonPID()
	if pid == 0 || ppid(pid) != e.daemon.Process.Pid {
		e.t.Fatalf("daemon.lock names pid %d, not a child of the keeper %d", pid, e.daemon.Process.Pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	// SIGKILL lands asynchronously: until the process is a zombie (or
	// reaped) it may still accept a connection from the shared socket.
	// Return only once it is dead, so that what a caller starts after
	// this call was never carried by the killed daemon.
	deadline := time.Now().Add(5 * time.Second)
	for st := procState(pid); st != 'Z' && st != 0; st = procState(pid) {
		if time.Now().After(deadline) {
			e.t.Fatalf("daemon %d still runs (state %c) 5s after SIGKILL", pid, st)
		}
		time.Sleep(time.Millisecond)
	}
	return pid
}

// waitNewDaemon waits until a daemon other than old, the keeper's child,
// holds daemon.lock and answers, and returns its pid.
func (e *env) waitNewDaemon(old int) int {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		pid := e.daemonPID()
		if pid != old && pid != 0 && ppid(pid) == e.daemon.Process.Pid {
			if _, err := e.client.Status(context.Background()); err == nil {
				return pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no new daemon replaced pid %d within 15s; log:\n%s", old, tail(e.daemonLog(), 40))
	return 0
}

// ownBinary makes `serve` run from a copy of the cutover binary in this
// env's directory, which the test may replace before an upgrade.
func (e *env) ownBinary() string {
	e.t.Helper()
	dst := filepath.Join(e.dir, "bin", "cutover")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		e.t.Fatal(err)
	}
	installBinary(e.t, bin, dst)
	e.exe = dst
	return dst
}

// installBinary copies src over dst the way an operator installs a new
// binary: a new file renamed over the old path.
func installBinary(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// ppid returns the parent pid of pid; 0 if it is gone.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 || f[0] == "Z" {
		return 0
	}
	p, _ := strconv.Atoi(f[2])
	return p
}

// run runs the cutover CLI with this env's config.
func (e *env) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := exec.Command(bin, append([]string{"-c", e.cfg}, args...)...)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("run cutover %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return o.String(), er.String(), code
}

// deploy ships a release through the API and returns when its traffic
// switch began and ended (zero if it did not switch).
func (e *env) deploy(req deploy.Request) (deploy.Event, switchAt, error) {
	e.t.Helper()
	var sw switchAt
	res, err := e.client.Deploy(context.Background(), req, func(ev deploy.Event) {
		if ev.Type == "step" && ev.Step == deploy.StepSwitch {
			switch ev.Status {
			case "start":
				sw.began = ev.Time
			case "ok":
				sw.ended = ev.Time
			}
		}
	})
	return res, sw, err
}

func (e *env) status() deploy.Status {
	e.t.Helper()
	st, err := e.client.Status(context.Background())
	if err != nil {
		e.t.Fatalf("status: %v", err)
	}
	return st
}

// cleanup stops the app and the daemon and makes sure no process of this
// env survives the test.
func (e *env) cleanup() {
	e.stopServe()
	killStrays(e.t, e.dir)
	if !e.t.Failed() {
		os.RemoveAll(e.dir)
	} else {
		e.t.Logf("kept %s; daemon log:\n%s", e.dir, tail(e.daemonLog(), 40))
	}
}

// stopServe stops the app and `cutover serve` (`cutover stop`, else
// SIGTERM, else after 20 s SIGKILL) and waits for it; a no-op when none
// runs.
func (e *env) stopServe() {
	if e.daemon == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	// Stop is the daemon's, not one app's (a client may name an app).
	if err := e.client.App("").Stop(ctx); err != nil {
		e.daemon.Process.Signal(syscall.SIGTERM)
	}
	cancel()
	select {
	case <-e.daemonW:
	case <-time.After(20 * time.Second):
		e.daemon.Process.Kill()
		<-e.daemonW
	}
	e.daemon = nil
}

// killStrays kills any process whose working directory is inside dir: an
// instance left behind is a test failure, and must not outlive the test.
func killStrays(t *testing.T, dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, p := range procs {
		target, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(target, dir) {
			continue
		}
		var pid int
		fmt.Sscanf(strings.TrimPrefix(p, "/proc/"), "%d", &pid)
		if pid == os.Getpid() {
			continue
		}
		t.Errorf("process %d still running in %s after cleanup (orphan)", pid, target)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// get does one GET and returns status, version and body.
func get(url string) (int, string, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-App-Version"), b.String(), nil
}

// pickPort returns a free loopback port below the ephemeral range, so that
// no outgoing connection takes it while the daemon restarts.
func pickPort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
