package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// TestInstanceKilledUnderLoad: kill -9 of one of two instances loses no GET;
// the instance is restarted and comes back into rotation.
func TestInstanceKilledUnderLoad(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1 := e.release("v1", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	victim := e.status().Instances[0]
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 400, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
	time.Sleep(500 * time.Millisecond)
	gen.Mark("kill -9")
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		gen.Stop()
		t.Fatal(err)
	}
	// Wait for the restart and the return to rotation.
	var back bool
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && !back {
		for _, in := range e.status().Instances {
			if in.ID == victim.ID && in.Restarts >= 1 && in.Healthy && in.PID != victim.PID {
				back = true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	gen.Mark("after restart")
	time.Sleep(500 * time.Millisecond)
	rep := gen.Stop()
	if !back {
		t.Fatalf("instance %s was not restarted and healthy within 15s: %+v", victim.ID, e.status().Instances)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d GETs failed after kill -9 of one instance: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	// The restarted instance serves again: direct requests through the
	// proxy reach both instances' ports over time; check its crash shows.
	st, _, code := e.run("status")
	if code != 0 || !strings.Contains(st, "signal: killed") {
		t.Errorf("status (exit %d) does not show the crash:\n%s", code, st)
	}
}

// TestDaemonKilledUnderLoad: kill -9 of the daemon does not stop the app;
// the next `serve` re-adopts the same processes and a deploy works.
func TestDaemonKilledUnderLoad(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	before := e.status().Instances
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 200, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
	time.Sleep(300 * time.Millisecond)
	gen.Mark("daemon down")
	e.killDaemon()
	// The app itself never stopped: each instance answers on its own port.
	for _, in := range before {
		code, v, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", in.Port))
		if err != nil || code != http.StatusOK || v != "v1" {
			t.Errorf("instance %s while the daemon is down: %d %q %v; want 200 from v1", in.ID, code, v, err)
		}
	}
	restart := time.Now()
	e.serve()
	gen.Mark("daemon back")
	downFor := time.Since(restart)
	time.Sleep(500 * time.Millisecond)
	rep := gen.Stop()

	after := e.status().Instances
	if len(after) != len(before) {
		t.Fatalf("after restart %d instances, want %d: %+v", len(after), len(before), after)
	}
	for i := range before {
		if after[i].PID != before[i].PID {
			t.Errorf("instance %s pid %d → %d: it was restarted, not adopted", before[i].ID, before[i].PID, after[i].PID)
		}
		if !after[i].Adopted {
			t.Errorf("instance %s not marked adopted", after[i].ID)
		}
	}
	back := rep.Phases[len(rep.Phases)-1]
	if back.Failed != 0 {
		t.Errorf("%d requests failed after the daemon came back: %v", back.Failed, back.Errors)
	}
	t.Logf("daemon restart took %s; requests during the restart: %d failed of %d", downFor,
		rep.Phases[1].Failed, rep.Phases[1].Requests)
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatalf("deploy right after the restart: %v", err)
	}
	if _, v, _, err := get(e.url("/")); err != nil || v != "v2" {
		t.Errorf("after deploy: %q %v; want v2", v, err)
	}
}

// TestDaemonRestartWithSocketActivation: with the proxy socket held by a
// service manager (systemd socket activation), restarting the daemon — by
// SIGTERM or even SIGKILL — refuses no connection: clients queue in the
// socket's backlog until the next daemon accepts them. A graceful restart
// loses nothing; a kill -9 can only cut the requests in flight at that
// instant.
func TestDaemonRestartWithSocketActivation(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serveActivated()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 300, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "steady")
	time.Sleep(300 * time.Millisecond)

	gen.Mark("SIGTERM restart")
	e.daemon.Process.Signal(syscall.SIGTERM)
	<-e.daemonW
	e.daemon = nil
	e.serveActivated()
	time.Sleep(300 * time.Millisecond)

	gen.Mark("SIGKILL restart")
	e.killDaemon()
	time.Sleep(200 * time.Millisecond) // nobody accepts meanwhile
	e.serveActivated()
	time.Sleep(300 * time.Millisecond)

	gen.Mark("deploy after")
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatalf("deploy after the restarts: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	rep := gen.Stop()
	var sb strings.Builder
	rep.Print(&sb)
	t.Logf("load report:\n%s", sb.String())
	for _, p := range rep.Phases {
		for msg := range p.Errors {
			if strings.Contains(msg, "refused") {
				t.Errorf("%s: a connection was refused (%s): the socket did not outlive the daemon", p.Name, msg)
			}
		}
		switch p.Name {
		case "SIGKILL restart":
			// Only what was in flight when the daemon died can fail.
			if p.Failed > 5 {
				t.Errorf("%s: %d of %d requests failed; want at most the few in flight at the kill", p.Name, p.Failed, p.Requests)
			}
		default:
			if p.Failed != 0 {
				t.Errorf("%s: %d of %d requests failed: %v", p.Name, p.Failed, p.Requests, p.Errors)
			}
		}
	}
}
