package keeper

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Environment of the fake daemon: the test binary re-executed by the
// keeper under test speaks the control link as a daemon would.
const (
	envFake = "KEEPER_TEST_FAKE" // the mode; see fakeDaemon
	envDir  = "KEEPER_TEST_DIR"  // where it records what happened
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envFake); mode != "" {
		os.Exit(fakeDaemon(mode))
	}
	os.Exit(m.Run())
}

// fakeDaemon plays a daemon: it serves its pid over HTTP on the proxy
// socket it was passed, and answers the keeper's messages. Modes:
//
//	ok        ready at once; releases and resumes when asked
//	refuse    like ok, but refuses to release ("a deploy runs")
//	fail      says failed and exits 3 before it is prepared
//	hang      prepared, then never ready
//	die       prepared, then exits 1 after 100 ms without being ready
//	exit0     ready, then exits 0 after 100 ms (stopped on purpose)
//	crash     ready, then exits 1 after 50 ms (a daemon dying in a loop)
//	slowclose like ok, but on SIGTERM accepts 300 ms more before it closes
//	          its listener and says closed (a daemon busy when told to stop)
//	noclose   like ok, but never says closed (a daemon of an older version)
//
// It records "resumed <pid>" in $KEEPER_TEST_DIR/events when resumed.
func fakeDaemon(mode string) int {
	// The first mode is the first daemon's; KEEPER_TEST_NEXT, if set, is
	// every later one's (set by the test between starts).
	link, err := LinkFromEnv()
	if err != nil || link == nil {
		fmt.Fprintln(os.Stderr, "fake daemon: no link:", err)
		return 4
	}
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getppid()) || os.Getenv("LISTEN_FDS") != "1" || os.Getenv("LISTEN_FDNAMES") != "proxy" {
		link.Send(MsgFailed, fmt.Sprintf("bad LISTEN_ variables: pid %s fds %s names %s", os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")))
		return 4
	}
	if mode == "fail" {
		link.Send(MsgFailed, "config broken at cutover.toml:3")
		return 3
	}
	f := os.NewFile(3, "proxy")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		link.Send(MsgFailed, err.Error())
		return 4
	}
	pid := strconv.Itoa(os.Getpid())
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, pid) }))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	link.Send(MsgPrepared, "fake-"+mode)
	switch mode {
	case "hang":
	case "die":
		time.Sleep(100 * time.Millisecond)
		return 1
	case "exit0":
		link.Send(MsgReady, "")
		time.Sleep(100 * time.Millisecond)
		return 0
	case "crash":
		link.Send(MsgReady, "")
		time.Sleep(50 * time.Millisecond)
		return 1
	default:
		link.Send(MsgReady, "")
	}
	for {
		select {
		case <-sigs:
			if mode == "slowclose" {
				time.Sleep(300 * time.Millisecond)
			}
			ln.Close()
			if mode != "noclose" {
				link.Send(MsgClosed, "")
			}
			time.Sleep(100 * time.Millisecond) // finishing what it carries
			return 0
		case m, ok := <-link.Messages():
			if !ok {
				return 0
			}
			switch m.Word {
			case MsgRelease:
				if mode == "refuse" {
					link.Send(MsgRefused, "a deploy is in progress")
				} else {
					link.Send(MsgReleased, "")
				}
			case MsgResume:
				record("resumed " + pid)
				link.Send(MsgResumed, "")
			}
		}
	}
}

func record(s string) {
	f, err := os.OpenFile(filepath.Join(os.Getenv(envDir), "events"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, s)
}
