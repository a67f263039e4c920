package keeper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/freeport"
)

// waitTimeout bounds every wait of these tests; a failure deadline, not
// a pacing delay.
const waitTimeout = 20 * time.Second

// running is one keeper.Run in a goroutine, its daemons the fake daemon.
type running struct {
	dir  string
	addr string
	done chan error
	stop context.CancelFunc
}

// startKeeper runs a keeper whose first daemon plays mode.
func startKeeper(t *testing.T, mode string) *running {
	t.Helper()
	return startKeeperLog(t, mode, slog.NewTextHandler(io.Discard, nil))
}

// startKeeperLog is startKeeper with the keeper's log going to h.
func startKeeperLog(t *testing.T, mode string, h slog.Handler) *running {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "keeper-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envFake, mode)
	t.Setenv(envDir, dir)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{dir: dir, addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan error, 1), stop: cancel}
	go func() {
		r.done <- Run(ctx, Options{
			Exe: exe, DataDir: dir, ProxyListen: r.addr, ConfigPath: "cutover.toml",
			ReadyTimeout: 2 * time.Second, Logger: slog.New(h),
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
			r.done <- nil
		case <-time.After(waitTimeout):
			t.Errorf("keeper did not return %s after its context ended", waitTimeout)
		}
	})
	return r
}

// pid asks whichever daemon accepts for its pid; 0 if none answered.
func (r *running) pid(t *testing.T) (int, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitTimeout}
	resp, err := c.Get("http://" + r.addr + "/")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(b))
}

// waitPID waits until a daemon answers and returns its pid.
func (r *running) waitPID(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if pid, err := r.pid(t); err == nil {
			return pid
		}
		select {
		case err := <-r.done:
			t.Fatalf("keeper returned before a daemon answered: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no daemon answered on %s within %s", r.addr, waitTimeout)
	return 0
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still runs after %s", pid, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeeperRestartsKilledDaemon: kill -9 of the daemon is followed by a
// new one at once, and no connection is refused meanwhile: the socket is
// the keeper's.
func TestKeeperRestartsKilledDaemon(t *testing.T) {
	r := startKeeper(t, "ok")
	first := r.waitPID(t)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Requests during the restart wait in the backlog; none is refused.
	// (One sent before the kill landed could be accepted by the dying
	// daemon and reset: in flight at the kill.)
	waitGone(t, first)
	deadline := time.Now().Add(waitTimeout)
	var second int
	for second == 0 || second == first {
		if time.Now().After(deadline) {
			t.Fatalf("no new daemon answered within %s", waitTimeout)
		}
		pid, err := r.pid(t)
		if err != nil {
			t.Fatalf("request while the daemon restarts: %v; want it to wait for the next daemon", err)
		}
		second = pid
	}
	if !alive(second) {
		t.Errorf("pid %d answered but is gone", second)
	}
	r.stop()
	if err := <-r.done; err != nil {
		t.Errorf("keeper after SIGTERM: got %v, want nil", err)
	}
	r.done <- nil
	waitGone(t, second)
}

// TestKeeperStopsWhenDaemonExitsCleanly: a daemon that exits 0 was
// stopped on purpose (`cutover stop`): the keeper restarts nothing and
// returns nil.
func TestKeeperStopsWhenDaemonExitsCleanly(t *testing.T) {
	r := startKeeper(t, "exit0")
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Errorf("keeper after the daemon's clean exit: got %v, want nil", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("keeper still runs %s after its daemon exited 0", waitTimeout)
	}
}

// TestKeeperFirstDaemonFails: a first daemon that fails is not retried:
// `cutover serve` fails with its reason.
func TestKeeperFirstDaemonFails(t *testing.T) {
	r := startKeeper(t, "fail")
	select {
	case err := <-r.done:
		r.done <- err
		var de *DaemonError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "config broken at cutover.toml:3") || !strings.Contains(err.Error(), "exit status 3") {
			t.Errorf("keeper: got %v, want a DaemonError with the daemon's reason and exit", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("keeper still runs %s after its first daemon failed", waitTimeout)
	}
}

// TestUpgradeHandsOver: the new daemon serves, the old one exits, and the
// result names both.
func TestUpgradeHandsOver(t *testing.T) {
	r := startKeeper(t, "ok")
	old := r.waitPID(t)
	var steps []string
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	res, err := Upgrade(ctx, r.dir, func(s string) { steps = append(steps, s) })
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if res.OldPID != old || res.NewPID == old || res.NewPID == 0 || res.NewVersion != "fake-ok" || res.OldVersion != "fake-ok" {
		t.Errorf("upgrade result: got %+v, want old pid %d → a new pid, versions fake-ok", res, old)
	}
	if len(steps) != 3 {
		t.Errorf("progress: got %q, want started, prepared, serves", steps)
	}
	waitGone(t, old)
	if pid := r.waitPID(t); pid != res.NewPID {
		t.Errorf("after the upgrade pid %d answers, want %d", pid, res.NewPID)
	}
}

// TestUpgradeAnswersOnceOldStopsAccepting: `cutover upgrade` returns only
// when the old daemon no longer accepts, so that every connection opened
// after it reaches the new daemon — even when the old one takes its time
// to close; an old daemon that never says "closed" (an older version)
// delays the answer by closedTimeout at most.
func TestUpgradeAnswersOnceOldStopsAccepting(t *testing.T) {
	for _, mode := range []string{"slowclose", "noclose"} {
		t.Run(mode, func(t *testing.T) {
			r := startKeeper(t, mode)
			old := r.waitPID(t)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			start := time.Now()
			res, err := Upgrade(ctx, r.dir, nil)
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			took := time.Since(start)
			for i := range 30 {
				pid, err := r.pid(t)
				if err != nil || pid != res.NewPID {
					t.Fatalf("request %d after the upgrade returned: pid %d (%v), want the new daemon %d (old %d)", i+1, pid, err, res.NewPID, old)
				}
			}
			if mode == "noclose" && took > closedTimeout+time.Second {
				t.Errorf("upgrade took %s with an old daemon that never says closed, want at most closedTimeout (%s) more", took, closedTimeout)
			}
		})
	}
}

// TestUpgradeFailureKeepsOldDaemon: a new daemon that fails at any stage
// is killed, the old one serves on (told to resume if it had released),
// the error says why, and a later upgrade works.
func TestUpgradeFailureKeepsOldDaemon(t *testing.T) {
	for _, c := range []struct {
		next, first string
		want        string // in the error
		resumed     bool   // the old daemon was told to resume
	}{
		{next: "fail", first: "ok", want: "config broken at cutover.toml:3 (exit status 3)"},
		{next: "die", first: "ok", want: "exited before it was ready: exit status 1", resumed: true},
		{next: "hang", first: "ok", want: "before it was ready: no answer within 2s; killed it", resumed: true},
		{next: "ok", first: "refuse", want: "refused: a deploy is in progress"},
	} {
		t.Run(c.next+" after "+c.first, func(t *testing.T) {
			r := startKeeper(t, c.first)
			old := r.waitPID(t)
			t.Setenv(envFake, c.next)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			_, err := Upgrade(ctx, r.dir, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("upgrade: got %v, want an error with %q", err, c.want)
			}
			if c.resumed && !strings.Contains(err.Error(), "the old daemon (pid "+strconv.Itoa(old)+") serves on") {
				t.Errorf("upgrade error %q does not say the old daemon serves on", err)
			}
			b, _ := os.ReadFile(filepath.Join(r.dir, "events"))
			if got := strings.Contains(string(b), "resumed "+strconv.Itoa(old)); got != c.resumed {
				t.Errorf("old daemon resumed: got %v, want %v (events %q)", got, c.resumed, b)
			}
			for range 20 {
				if pid, err := r.pid(t); err != nil || pid != old {
					t.Fatalf("after the failed upgrade: pid %d answered (err %v), want the old daemon %d", pid, err, old)
				}
			}
			t.Setenv(envFake, "ok")
			res, err := Upgrade(ctx, r.dir, nil)
			if c.first == "refuse" {
				if err == nil {
					t.Errorf("upgrade of a refusing daemon succeeded: %+v", res)
				}
				return
			}
			if err != nil || res.OldPID != old {
				t.Errorf("upgrade after the failed one: got %+v, %v; want from pid %d", res, err, old)
			}
		})
	}
}

// restartLog records the delays of the keeper's "starting it again" logs.
type restartLog struct {
	slog.Handler
	delays chan time.Duration
}

func (h restartLog) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "starting it again") {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "after" {
				h.delays <- a.Value.Duration()
			}
			return true
		})
	}
	return nil
}

func (h restartLog) WithAttrs([]slog.Attr) slog.Handler { return h }

// TestKeeperBacksOffACrashLoop: a daemon that keeps dying young is
// started again at once the first time, then after a doubling delay, each
// restart logged with it.
func TestKeeperBacksOffACrashLoop(t *testing.T) {
	h := restartLog{Handler: slog.NewTextHandler(io.Discard, nil), delays: make(chan time.Duration, 16)}
	startKeeperLog(t, "crash", h)
	for i, want := range []time.Duration{0, minBackoff, 2 * minBackoff} {
		select {
		case got := <-h.delays:
			if got != want {
				t.Errorf("restart %d: logged delay %s, want %s", i+1, got, want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("restart %d not logged within %s", i+1, waitTimeout)
		}
	}
}

// TestReleasedDrain: the drain a daemon announces with "released" reads
// back as sent; what an older daemon sends (nothing) or a garbled one is
// no drain, so the keeper's stop grace alone applies.
func TestReleasedDrain(t *testing.T) {
	for _, d := range []time.Duration{0, 33 * time.Second, 5 * time.Minute} {
		m := parseMsg(MsgReleased + " " + ReleasedArg(d) + "\n")
		if m.Word != MsgReleased || releasedDrain(m.Arg) != d {
			t.Errorf("ReleasedArg(%v): read back %q as %v", d, m.Arg, releasedDrain(m.Arg))
		}
	}
	for _, arg := range []string{"", "drain=", "drain=soon", "drain=-5s", "5s"} {
		if got := releasedDrain(arg); got != 0 {
			t.Errorf("releasedDrain(%q) = %v, want 0", arg, got)
		}
	}
}
