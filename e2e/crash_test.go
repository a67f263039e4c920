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

// TestDaemonKilledUnderLoad: kill -9 of the daemon (the keeper's child)
// does not stop the app, and refuses no connection: the keeper holds the
// proxy socket, clients wait in its backlog, and the keeper starts a new
// daemon at once, which re-adopts the same processes; only the requests in
// flight at the kill may fail. A deploy works afterwards.
func TestDaemonKilledUnderLoad(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	before := e.status().Instances
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 500, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
	time.Sleep(300 * time.Millisecond)
	gen.Mark("daemon killed")
	killed := time.Now()
	old := e.killDaemon()
	// The app itself never stopped: each instance answers on its own port.
	for _, in := range before {
		code, v, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", in.Port))
		if err != nil || code != http.StatusOK || v != "v1" {
			t.Errorf("instance %s while the daemon is down: %d %q %v; want 200 from v1", in.ID, code, v, err)
		}
	}
	pid := e.waitNewDaemon(old)
	downFor := time.Since(killed)
	gen.Mark("daemon back")
	time.Sleep(500 * time.Millisecond)
	rep := gen.Stop()
	var sb strings.Builder
	rep.Print(&sb)
	t.Logf("daemon pid %d killed; pid %d serves %s later; load report:\n%s", old, pid, downFor, sb.String())

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
	for _, p := range rep.Phases {
		for msg, n := range p.Errors {
			if strings.Contains(msg, "refused") {
				t.Errorf("%s: %d connection(s) refused (%s): the socket did not outlive the daemon", p.Name, n, msg)
			}
		}
	}
	// Only what the daemon carried at the kill can fail: a few requests
	// at this rate (each takes about a millisecond).
	if f := rep.Phases[1].Failed; f > 10 {
		t.Errorf("%d of %d requests failed around the kill; want only the few in flight: %v", f, rep.Phases[1].Requests, rep.Phases[1].Errors)
	}
	// A request counts in the phase it started in: one started just
	// before the kill and still in flight at it may fail too, as those of
	// the kill's phase may. Any other failure is a fault.
	var unexpected []string
	for _, r := range rep.Results {
		if r.Failed() && !r.Start.After(killed) && r.End.Before(killed) || r.Failed() && r.Start.After(killed) && !rep.Phases[2].Start.After(r.Start) {
			unexpected = append(unexpected, fmt.Sprintf("%s at +%s", r.Err, r.Start.Sub(killed).Round(time.Millisecond)))
		}
	}
	if len(unexpected) > 0 {
		t.Errorf("%d requests failed that were not in flight at the kill: %v", len(unexpected), unexpected)
	}
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatalf("deploy right after the restart: %v", err)
	}
	if _, v, _, err := get(e.url("/")); err != nil || v != "v2" {
		t.Errorf("after deploy: %q %v; want v2", v, err)
	}
}

// TestDaemonRestartWithSocketActivation: with the proxy socket held by a
// service manager (systemd socket activation), restarting `cutover serve`
// (the service's main process, the keeper) — by SIGTERM or even SIGKILL —
// refuses no connection: clients queue in the socket's backlog until the
// next daemon accepts them. A graceful restart loses nothing; a kill -9 of
// the keeper makes its daemon stop by itself, so it loses nothing either,
// and at most could cut the requests in flight.
//
// A SIGTERM restart is a handover, as an upgrade: the keeper exits as soon
// as its daemon stopped supervising, and that daemon accepts until the
// next one serves, so new requests do not wait for the requests it still
// carries — here a 3 s one — nor for the next daemon's start.
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
	type answer struct {
		code int
		body string
		err  error
	}
	slow := make(chan answer, 1)
	go func() {
		code, _, body, err := get(e.url("/slow?d=3s"))
		slow <- answer{code, body, err}
	}()
	time.Sleep(100 * time.Millisecond) // the slow request is in flight
	t0 := time.Now()
	e.daemon.Process.Signal(syscall.SIGTERM)
	<-e.daemonW
	keeperGone := time.Since(t0)
	e.daemon = nil
	e.serveActivated()
	restarted := time.Since(t0)
	t.Logf("SIGTERM restart: the keeper exited after %v, the next daemon served after %v", keeperGone.Round(time.Millisecond), restarted.Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)

	gen.Mark("SIGKILL restart")
	e.killKeeper()
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
	select {
	case a := <-slow:
		if a.err != nil || a.code != 200 {
			t.Errorf("the 3 s request in flight across the SIGTERM restart: %d %q %v; want 200", a.code, a.body, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the 3 s request in flight across the SIGTERM restart never answered")
	}
	for _, p := range rep.Phases {
		for msg := range p.Errors {
			if strings.Contains(msg, "refused") {
				t.Errorf("%s: a connection was refused (%s): the socket did not outlive the daemon", p.Name, msg)
			}
		}
		switch p.Name {
		case "SIGTERM restart":
			if p.Failed != 0 {
				t.Errorf("%s: %d of %d requests failed: %v", p.Name, p.Failed, p.Requests, p.Errors)
			}
			// New requests wait neither for the old daemon's slow
			// request nor for the new daemon's start.
			if p.Max > 500*time.Millisecond {
				t.Errorf("%s: a request waited %v; want no wait for the old daemon's requests in flight nor for the next daemon's start", p.Name, p.Max)
			}
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
