// Package demoapp is a small web app built into the cutover binary (as the
// hidden command `cutover demo-app`), so a whole deploy can be tried and
// tested with nothing else installed.
//
// It behaves like a real app under deploy: it can boot slowly, fail to
// boot, fail its health check or a share of its requests, serve slow
// requests, streams and websockets, and it stops gracefully on SIGTERM,
// finishing what is in flight. Its behaviour comes from environment
// variables, overridden by a demo.env file in its working directory:
//
//	PORT              port to listen on at 127.0.0.1 (required)
//	DEMO_VERSION      version it reports; default: the VERSION file, else "dev"
//	DEMO_BOOT_DELAY   wait this long (e.g. "5s") before listening
//	DEMO_FAIL_BOOT    "1": fail after the boot delay, exit status 1
//	DEMO_FAIL_HEALTH  "1": the health path answers 500
//	DEMO_ERROR_RATE   share (0 to 1) of requests to / answered 500; with
//	                  0.25, exactly every 4th request fails
//	DEMO_WORK         rounds of CPU work (a xorshift loop, about 1ns a
//	                  round) done for every request to /: the app's own
//	                  code, which a busy machine slows; twice the rounds
//	                  make a release twice as slow. Default 0
//	DEMO_HEALTH_PATH  health check path; default /healthz
//	DEMO_QUERY        SQL run on every request to / (see db.go, with
//	                  `cutover demo-app migrate`)
//	DEMO_LOCK_FILE    a file it locks (flock, exclusive, not waiting) before
//	                  it boots and holds until it exits: a second copy of the
//	                  app exits with status 1 saying another copy holds it,
//	                  as an app on one SQLite file or volume would fail.
//	                  deploy.strategy "stop-first" ships such an app
//	DEMO_TCP_PORT     also listen on 127.0.0.1:$DEMO_TCP_PORT for TCP: each
//	                  connection gets "demo <version> <instance> <pid>",
//	                  then its lines echoed (port_env of a [[app.tcp]])
//
// Every response carries X-App-Version. Endpoints: / (hello), the health
// path, /slow?d=5s, /stream?n=10&every=100ms, /ws (echo), /env?name=NAME,
// /echo (POST body back), /bytes?n=1048576 and /files/NAME (PUT stores,
// GET returns uploads/NAME under the working directory).
package demoapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// ShutdownGrace is how long in-flight requests get to finish once the
// app is asked to stop. Websockets are closed after it.
const ShutdownGrace = 30 * time.Second

// Run runs the demo app until ctx is cancelled (the binary cancels it on
// SIGTERM or SIGINT), then shuts down gracefully. It prints one line to
// stdout once it listens; diagnostics go to stderr. It returns an error
// when the settings are wrong, when another copy holds DEMO_LOCK_FILE,
// when boot fails (DEMO_FAIL_BOOT), or when serving fails.
func Run(ctx context.Context, stdout, stderr io.Writer) error {
	s, err := loadSettings(os.Environ(), ".")
	if err != nil {
		return fmt.Errorf("demo app: %w", err)
	}
	if s.lockFile != "" {
		unlock, err := lockExclusive(s.lockFile)
		if err != nil {
			return fmt.Errorf("demo app %s: %w", s.version, err)
		}
		defer unlock()
	}
	a := newApp(s, stderr)
	if s.query != "" {
		db, _, err := openDB(s.env)
		if err != nil {
			return fmt.Errorf("demo app %s: DEMO_QUERY: %w", s.version, err)
		}
		defer db.Close()
		a.db = db
	}
	if stopped, err := a.boot(ctx); err != nil || stopped {
		return err
	}
	stopTCP, err := a.serveTCP(ctx)
	if err != nil {
		return err
	}
	defer stopTCP()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", s.port))
	if err != nil {
		return fmt.Errorf("demo app %s: listen: %w", s.version, err)
	}
	return a.serve(ctx, ln, stdout)
}

// app is one running demo app.
type app struct {
	s      settings
	stderr io.Writer
	db     *sql.DB // DEMO_QUERY's database; nil without one

	rootRequests atomic.Uint64 // requests to /, for DEMO_ERROR_RATE
	workSink     atomic.Uint64 // the result of DEMO_WORK's loop, unread
	upgrader     websocket.Upgrader

	mu      sync.Mutex
	sockets map[*websocket.Conn]struct{} // open websockets; guarded by mu
	closing bool                         // no new websockets; guarded by mu
	wsWG    sync.WaitGroup               // websocket handlers still running

	// slowStarted, when set (by tests), is called when a /slow request
	// starts sleeping.
	slowStarted func()
}

func newApp(s settings, stderr io.Writer) *app {
	return &app{
		s:      s,
		stderr: stderr,
		// Any origin: the demo app runs on loopback behind cutover's proxy.
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		sockets:  map[*websocket.Conn]struct{}{},
	}
}

// boot simulates the app's start: it waits DEMO_BOOT_DELAY and fails when
// DEMO_FAIL_BOOT is set. It reports stopped when ctx ended the wait.
func (a *app) boot(ctx context.Context) (stopped bool, err error) {
	if d := a.s.bootDelay; d > 0 {
		fmt.Fprintf(a.stderr, "demo app %s: booting, ready in %s (DEMO_BOOT_DELAY)\n", a.s.version, d)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return true, nil
		case <-t.C:
		}
	}
	if a.s.failBoot {
		fmt.Fprintf(a.stderr, "demo app %s: starting\n"+
			"ERROR boot failed: connect to database postgres://demo@127.0.0.1:5432/demo: dial tcp 127.0.0.1:5432: connect: connection refused\n"+
			"  (this failure is simulated: DEMO_FAIL_BOOT=1)\n", a.s.version)
		return false, fmt.Errorf("demo app %s: boot failed (DEMO_FAIL_BOOT=1)", a.s.version)
	}
	return false, nil
}

// serve answers requests on ln until ctx is cancelled, then shuts down:
// in-flight requests get ShutdownGrace to finish, then open websockets are
// closed with "going away".
func (a *app) serve(ctx context.Context, ln net.Listener, stdout io.Writer) error {
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(a.stderr, "demo app: ", 0),
	}
	fmt.Fprintf(stdout, "demo app %s listening on %s (pid %d)\n", a.s.version, ln.Addr(), os.Getpid())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("demo app %s: serve: %w", a.s.version, err)
	case <-ctx.Done():
	}

	fmt.Fprintf(a.stderr, "demo app %s: stopping, finishing in-flight requests\n", a.s.version)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if shutErr != nil {
		// The grace period is over: cut what is left.
		shutErr = errors.Join(shutErr, srv.Close())
	}
	a.closeSockets()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		shutErr = errors.Join(shutErr, err)
	}
	if shutErr != nil {
		return fmt.Errorf("demo app %s: shutdown: %w", a.s.version, shutErr)
	}
	return nil
}

// closeSockets closes every open websocket with "going away" and waits
// for their handlers to return. http.Server.Shutdown does not track
// hijacked connections, so this is the only place they end.
func (a *app) closeSockets() {
	a.mu.Lock()
	a.closing = true
	conns := make([]*websocket.Conn, 0, len(a.sockets))
	for c := range a.sockets {
		conns = append(conns, c)
	}
	a.mu.Unlock()

	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
	for _, c := range conns {
		// Best effort: the peer may already be gone, and Close follows.
		_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = c.Close()
	}
	a.wsWG.Wait()
}

// Main runs the demo app as the whole job of a process — until SIGTERM or
// SIGINT, then a graceful shutdown — and returns the exit status. Test
// binaries that double as the app under deploy call it from TestMain.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
