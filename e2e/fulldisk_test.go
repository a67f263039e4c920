package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
)

// TestFullDiskWhileLogging fills the data dir's file system with the
// app's output: the app and the daemon go on serving, the daemon still
// answers and deploys (the log writers leave the last 5% of the disk to
// its state), and its log says output was dropped. Before, the first
// deploy failed with "database or disk is full" and its instance was
// stopped.
func TestFullDiskWhileLogging(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	// The app writes 20 MB at start, then runs the demo app, on a data
	// dir of 16 MiB (log_max_size 8 MiB: a log and its .1 fill the disk).
	// Registered before the env's clean-up, so run after it: the app and
	// its log writer are gone by then and the unmount cannot be busy.
	var mounted string
	t.Cleanup(func() {
		if mounted == "" {
			return
		}
		if out, err := exec.Command("umount", mounted).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mounted, err, out)
			return
		}
		if !t.Failed() {
			os.RemoveAll(filepath.Dir(mounted)) // the env's clean-up could not remove a mount point
		}
	})
	e := newEnv(t, settings{instances: 1, extraApp: "log_max_size = 8388608\n"})
	cfg, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	flood := `head -c 20000000 /dev/zero; `
	cfg = []byte(strings.Replace(string(cfg), "command = \"'", "command = \""+flood+"'", 1))
	if err := os.WriteFile(e.cfg, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(e.dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	mounted = data
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: e.release("v1", "")}); err != nil {
		t.Fatalf("deploy v1: %v\n%s", err, tail(e.daemonLog(), 30))
	}
	// Serving, with the disk full.
	for i := range 20 {
		if code, v, _, err := get(e.url("/")); err != nil || code != 200 || v != "v1" {
			t.Fatalf("request %d: %d %q %v", i, code, v, err)
		}
	}
	if !strings.Contains(e.daemonLog(), "cannot be written to its log") {
		t.Errorf("the daemon's log does not say output was dropped:\n%s", tail(e.daemonLog(), 30))
	}
	st := e.status()
	if len(st.Instances) != 1 || st.Instances[0].Restarts != 0 {
		t.Errorf("status: %+v; want one instance, never restarted", st.Instances)
	}
	// The daemon still deploys: the logs left room for its state.
	if _, _, err := e.deploy(deploy.Request{Source: e.release("v2", "")}); err != nil {
		t.Fatalf("deploy v2 with the logs' disk full: %v\n%s", err, tail(e.daemonLog(), 30))
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := e.client.Status(t.Context()); err != nil {
		t.Fatalf("daemon no longer answers: %v\n%s", err, tail(e.daemonLog(), 30))
	}
	if code, v, _, err := get(e.url("/")); err != nil || code != 200 || v != "v2" {
		t.Fatalf("after the second deploy: %d %q %v; want v2", code, v, err)
	}
}
