package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// stopFirstDeploy ships req through the API and returns the switch step's
// report of the hold ("" when it did not switch).
func (e *env) stopFirstDeploy(req deploy.Request) (string, error) {
	e.t.Helper()
	held := ""
	_, err := e.client.Deploy(context.Background(), req, func(ev deploy.Event) {
		if ev.Type == "step" && ev.Step == deploy.StepSwitch && ev.Status == "ok" {
			held = ev.Message
		}
	})
	return held, err
}

// TestStopFirstUnderLoad: an app that cannot run two copies at once (the
// demo app on one lock file, as an app on one SQLite file would be) is
// shipped with strategy "stop-first" five times and rolled back under 300
// requests/s: the proxy holds requests while the old copy stops and the
// new one boots, and none fails. A release that fails to boot brings the
// old one back, again without a failed request.
func TestStopFirstUnderLoad(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "app.lock")
	e := newEnv(t, settings{
		instances: 1,
		extraApp:  fmt.Sprintf("[app.env]\nDEMO_LOCK_FILE = %q", lock),
		extra:     "[deploy]\nstrategy = \"stop-first\"",
	})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	broken := e.release("v3", "DEMO_FAIL_BOOT=1\n")
	e.serve()
	if _, err := e.stopFirstDeploy(deploy.Request{Source: v1}); err != nil {
		t.Fatalf("deploy v1: %v", err)
	}

	gen := load.Start(load.Options{URL: e.url("/"), Rate: 300, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: 2 * time.Minute}, "steady")
	time.Sleep(300 * time.Millisecond)
	stop := func() load.Report {
		rep := gen.Stop()
		var sb strings.Builder
		rep.Print(&sb)
		t.Logf("load report:\n%s", sb.String())
		return rep
	}
	for i := range 5 {
		src, v := v2, "v2"
		if i%2 == 1 {
			src, v = v1, "v1"
		}
		gen.Mark("deploy " + v)
		held, err := e.stopFirstDeploy(deploy.Request{Source: src})
		if err != nil {
			stop()
			t.Fatalf("deploy %d (%s): %v\ndaemon log:\n%s", i+1, v, err, tail(e.daemonLog(), 30))
		}
		t.Logf("deploy %d (%s): %s", i+1, v, held)
		time.Sleep(200 * time.Millisecond)
	}
	// The last deploy was v2 (i = 4); roll back to v1.
	gen.Mark("rollback")
	held, err := e.stopFirstDeploy(deploy.Request{Rollback: true})
	if err != nil {
		stop()
		t.Fatalf("rollback: %v", err)
	}
	t.Logf("rollback: %s", held)
	time.Sleep(200 * time.Millisecond)
	gen.Mark("failed boot")
	_, err = e.stopFirstDeploy(deploy.Request{Source: broken})
	var ae *api.Error
	if !errors.As(err, &ae) || !strings.Contains(ae.Msg, "exited during boot") {
		stop()
		t.Fatalf("deploy of a failing release: got %v, want an 'exited during boot' failure", err)
	}
	time.Sleep(300 * time.Millisecond)
	rep := stop()
	t.Logf("longest request: %s (p99 %s) over %d requests", rep.Total.Max, rep.Total.P99, rep.Total.Requests)
	if rep.Total.Requests < 700 {
		t.Errorf("only %d requests were made; the load generator did not keep up", rep.Total.Requests)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	last := rep.Phases[len(rep.Phases)-1]
	if last.Versions["v1"] == 0 || last.Versions["v3"] != 0 {
		t.Errorf("versions after the failed boot: %v, want v1 only", last.Versions)
	}
	// Two deploys of v1 in one second get ids "…-v1" and "…-v1.2".
	if st := e.status(); !strings.HasSuffix(st.Active, "-v1") && !strings.Contains(st.Active, "-v1.") {
		t.Errorf("live release after the failed boot = %q, want the v1 release", st.Active)
	}
}
