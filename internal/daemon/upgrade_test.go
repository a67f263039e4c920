package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/keeper"
	"github.com/cutover/cutover/internal/supervisor"
)

// linkPair returns both ends of a control link: the daemon's and the one
// the test plays the keeper with.
func linkPair(t *testing.T) (daemonEnd, keeperEnd *keeper.Link) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ends [2]*keeper.Link
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "link")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		ends[i] = keeper.NewLink(c)
	}
	t.Cleanup(func() { ends[1].Close() })
	return ends[0], ends[1]
}

// await reads the keeper's end until word arrives, failing on anything
// else but the messages in skip.
func await(t *testing.T, l *keeper.Link, word string) keeper.Msg {
	t.Helper()
	select {
	case m, ok := <-l.Messages():
		if !ok {
			t.Fatalf("link closed while waiting for %q", word)
		}
		if m.Word != word {
			t.Fatalf("daemon said %q %q, want %q", m.Word, m.Arg, word)
		}
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("no %q within %s", word, waitTimeout)
	}
	return keeper.Msg{}
}

// startLinked runs a daemon under a keeper played by the test; it
// returns once the daemon said "prepared".
func startLinked(t *testing.T, cfg *config.Config, version string) (*running, *keeper.Link) {
	t.Helper()
	mine, theirs := linkPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{done: make(chan error, 1), stop: cancel}
	go func() {
		r.done <- Run(ctx, Options{Config: cfg, Logger: slog.New(slog.DiscardHandler), Keeper: mine, Version: version})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitTimeout):
			t.Errorf("daemon did not return %s after its context ended", waitTimeout)
		}
	})
	if m := await(t, theirs, keeper.MsgPrepared); m.Arg != version {
		t.Errorf("prepared: got version %q, want %q", m.Arg, version)
	}
	return r, theirs
}

func instancePIDs(t *testing.T, c *api.Client) []int {
	t.Helper()
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var pids []int
	for _, in := range st.Instances {
		pids = append(pids, in.PID)
	}
	slices.Sort(pids)
	return pids
}

// TestHandover plays the keeper's side of an upgrade against real
// daemons: the new one waits for daemon.lock while the old one supervises;
// a release is refused while a deploy waits in preview; once released, the
// new daemon adopts the same instance processes, and the old one's exit
// leaves the new admin socket in place. Then a release answered by
// "resume" gives supervision back: the old daemon restarts a killed
// instance again and takes changing requests again.
func TestHandover(t *testing.T) {
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := writeConfig(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	client := api.NewClient(cfg.SocketPath())

	a, ka := startLinked(t, cfg, "v-old")
	await(t, ka, keeper.MsgReady)
	src := filepath.Join(root, "src", "v1")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "VERSION"), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Deploy(ctx, deploy.Request{Source: src}, nil); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	pids := instancePIDs(t, client)
	if len(pids) != 2 {
		t.Fatalf("instances: got pids %v, want 2", pids)
	}
	st, _ := client.Status(ctx)
	for _, in := range st.Instances {
		start, err := supervisor.ProcStartTime(in.PID)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := supervisor.KillGroup(in.PID, start, 5*time.Second); err != nil && !errors.Is(err, supervisor.ErrGone) {
				t.Errorf("kill instance %s: %v", in.ID, err)
			}
		})
	}

	b, kb := startLinked(t, cfg, "v-new")
	// b holds state.db open but must wait for a's daemon.lock.
	select {
	case m := <-kb.Messages():
		t.Fatalf("the new daemon said %q before the old one released", m.Word)
	case <-time.After(300 * time.Millisecond):
	}

	t.Run("a release is refused while a deploy waits in preview", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			_, err := client.Deploy(ctx, deploy.Request{Source: src, Preview: true}, nil)
			done <- err
		}()
		deadline := time.Now().Add(waitTimeout)
		for {
			st, err := client.Status(ctx)
			if err == nil && st.Deploy != nil && st.Deploy.Detail == "preview" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no deploy waiting in preview after %s: %+v %v", waitTimeout, st.Deploy, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		ka.Send(keeper.MsgRelease, "")
		m := await(t, ka, keeper.MsgRefused)
		if !strings.Contains(m.Arg, "in progress") || !strings.Contains(m.Arg, "abort") {
			t.Errorf("refusal %q does not say a deploy runs and what to do", m.Arg)
		}
		// The abort's result is the aborted deploy's: an error.
		if _, err := client.Control(ctx, deploy.ActionAbort, nil); err != nil && !strings.Contains(err.Error(), "aborted") {
			t.Fatalf("abort: %v", err)
		}
		<-done
	})

	// The aborted deploy's request may take a moment to end: until then a
	// release is refused for it.
	for i := 0; ; i++ {
		ka.Send(keeper.MsgRelease, "")
		m := <-ka.Messages()
		if m.Word == keeper.MsgReleased {
			break
		}
		if m.Word != keeper.MsgRefused || !strings.Contains(m.Arg, "in flight") || i == 100 {
			t.Fatalf("release after the abort: got %q %q, want released", m.Word, m.Arg)
		}
		time.Sleep(20 * time.Millisecond)
	}
	await(t, kb, keeper.MsgReady)
	if got := instancePIDs(t, client); !slices.Equal(got, pids) {
		t.Errorf("pids under the new daemon: got %v, want the same processes %v", got, pids)
	}
	a.stop()
	if err := a.wait(t); err != nil {
		t.Errorf("old daemon after SIGTERM: got %v, want nil", err)
	}
	if got := instancePIDs(t, client); !slices.Equal(got, pids) {
		t.Errorf("after the old daemon exited: got pids %v, want %v (and the new admin socket kept)", got, pids)
	}

	// A handover that fails after the release: b gives up supervision,
	// then is told to resume.
	before, err := client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kb.Send(keeper.MsgRelease, "")
	await(t, kb, keeper.MsgReleased)
	// A connection of its own: the released daemon closes its idle
	// keep-alive connections, and one the pool picked just then would be
	// reset rather than answered.
	if _, err := api.NewClient(cfg.SocketPath()).Prune(ctx); err == nil || !strings.Contains(err.Error(), "handing over") {
		t.Errorf("prune while handing over: got %v, want a refusal", err)
	}
	kb.Send(keeper.MsgResume, "")
	await(t, kb, keeper.MsgResumed)
	// The same daemon counts on over the same proxy: status --watch must
	// not take the resume for another daemon (traffic_since).
	if after, err := client.Status(ctx); err != nil || !after.TrafficSince.Equal(before.TrafficSince) {
		t.Errorf("traffic_since after resume: %v (%v), want %v as before the release: the counters go on", after.TrafficSince, err, before.TrafficSince)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		got := instancePIDs(t, client)
		if len(got) == 2 && !slices.Contains(got, pids[0]) && got[0] != 0 && got[1] != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("killed instance %d not restarted after resume: pids %v", pids[0], got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := client.Stop(ctx); err != nil {
		t.Fatalf("stop after resume: %v", err)
	}
	if err := b.wait(t); err != nil {
		t.Errorf("daemon after stop: got %v, want nil", err)
	}
}

// TestDaemonStopsWhenKeeperGone: a daemon whose keeper died (its link at
// EOF) stops as on SIGTERM, so the next `cutover serve` can listen; the
// instances are left alone.
func TestDaemonStopsWhenKeeperGone(t *testing.T) {
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := writeConfig(t, root)
	a, ka := startLinked(t, cfg, "v")
	await(t, ka, keeper.MsgReady)
	ka.Close()
	if err := a.wait(t); err != nil {
		t.Errorf("daemon after its keeper went: got %v, want nil", err)
	}
}
