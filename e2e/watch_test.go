package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// TestStatusWatchDuringDeploy runs `cutover status --watch --interval
// 200ms` with its output piped (not a terminal) while a release is
// deployed under small load: blocks come one per interval, separated by
// a blank line, without ANSI sequences; the new release appears in them
// and becomes live; Ctrl-C (SIGINT) ends the watch with exit 0.
func TestStatusWatchDuringDeploy(t *testing.T) {
	e := newEnv(t, settings{instances: 1})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	old := e.status().Active
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 50, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "deploy")

	watch := exec.Command(bin, "-c", e.cfg, "status", "--watch", "--interval", "200ms")
	var out, errb bytes.Buffer
	watch.Stdout, watch.Stderr = &out, &errb
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- watch.Wait() }()
	defer func() {
		if watch.ProcessState == nil {
			watch.Process.Kill()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatalf("deploy v2: %v", err)
	}
	live := e.status().Active
	time.Sleep(700 * time.Millisecond) // a few blocks after the switch
	if err := watch.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("status --watch after SIGINT: %v, want exit 0; stderr: %s", err, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("status --watch did not end within 5 s of SIGINT")
	}
	rep := gen.Stop()
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}

	s := out.String()
	if strings.Contains(s, "\x1b[") {
		t.Errorf("ANSI sequences in piped output")
	}
	blocks := strings.Split(strings.TrimSuffix(s, "\n"), "\n\ncutover status --watch ")
	if len(blocks) < 5 {
		t.Fatalf("%d blocks in about 2 s at 200 ms, want 5 or more:\n%s", len(blocks), s)
	}
	if !strings.Contains(blocks[0], "live "+old) {
		t.Errorf("first block does not show %s live:\n%s", old, blocks[0])
	}
	last := blocks[len(blocks)-1]
	if !strings.Contains(last, "live "+live) || !strings.Contains(last, ": succeeded,") {
		t.Errorf("last block does not show %s live and the deploy succeeded:\n%s", live, last)
	}
	// The new release shows in some block's release table with requests
	// served: its row has a rate above zero.
	seen := false
	for _, b := range blocks {
		for _, line := range strings.Split(b, "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == live && f[2] != "0.0" && f[2] != "-" {
				seen = true
			}
		}
	}
	if !seen {
		t.Errorf("no block shows %s serving requests:\n%s", live, s)
	}
	t.Logf("%d blocks, %d requests, last block:\n%s", len(blocks), rep.Total.Requests, last)
}
