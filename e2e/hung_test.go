package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// TestAllInstancesHungUnderLoad: SIGSTOP of every instance of the live
// release at once — processes that neither exit nor answer — fails no GET.
// They leave rotation after unhealthy_after failed checks, so later
// requests are held; after restart_after failed checks each is killed
// (its whole group) and restarted, and the GETs that were waiting on a
// hung instance are sent again to the restarted ones. Before, the
// instances stayed stopped for good: every request held until
// hold_timeout and then failed with 503, and those sent to a hung
// instance waited for response_header_timeout (504).
func TestAllInstancesHungUnderLoad(t *testing.T) {
	e := newEnv(t, settings{instances: 2, extraHealth: "restart_after = 4"})
	v1 := e.release("v1", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	victims := e.status().Instances
	if len(victims) != 2 {
		t.Fatalf("instances: got %d, want 2: %+v", len(victims), victims)
	}
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 200, FreshShare: 0.25, Timeout: 30 * time.Second, MaxDuration: time.Minute}, "before")
	time.Sleep(500 * time.Millisecond)
	gen.Mark("SIGSTOP of all")
	for _, v := range victims {
		if err := syscall.Kill(v.PID, syscall.SIGSTOP); err != nil {
			gen.Stop()
			t.Fatal(err)
		}
	}
	stopped := time.Now()
	// Phases: "SIGSTOP of all" while the hung instances are still in
	// rotation (what is sent then waits on a hung instance until it is
	// killed), "held" once both are out (what is sent then is held by the
	// proxy), "after restart" once both restarts are healthy.
	var killedAt []time.Duration
	var out, back bool
	var outAfter time.Duration
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !back; {
		healthy, restarted := 0, 0
		killedAt = killedAt[:0]
		for _, in := range e.status().Instances {
			for _, v := range victims {
				if in.ID != v.ID {
					continue
				}
				if in.Healthy {
					healthy++
				}
				if in.Healthy && in.PID != v.PID && in.Restarts >= 1 {
					restarted++
					killedAt = append(killedAt, in.LastExitAt.Sub(stopped).Round(time.Millisecond))
				}
			}
		}
		if !out && healthy == 0 {
			out, outAfter = true, time.Since(stopped)
			gen.Mark("held")
		}
		back = restarted == len(victims)
		time.Sleep(20 * time.Millisecond)
	}
	downFor := time.Since(stopped)
	gen.Mark("after restart")
	time.Sleep(500 * time.Millisecond)
	rep := gen.Stop()
	var sb strings.Builder
	rep.Print(&sb)
	t.Logf("load report:\n%s", sb.String())
	if !back || !out {
		t.Fatalf("hung instances were not out of rotation (%v), then restarted and healthy within 20s: %+v", out, e.status().Instances)
	}
	inFlight, held := rep.Phases[1], rep.Phases[2]
	t.Logf("SIGSTOP → out of rotation after %s, killed after %v, both back in rotation after %s", outAfter.Round(time.Millisecond),
		killedAt, downFor.Round(time.Millisecond))
	t.Logf("GETs sent to a hung instance (in flight at its kill): %d, %d failed, the longest %s; GETs held meanwhile: %d, %d failed, the longest %s",
		inFlight.Requests, inFlight.Failed, inFlight.Max.Round(time.Millisecond), held.Requests, held.Failed, held.Max.Round(time.Millisecond))
	for _, p := range rep.Phases {
		if p.Failed != 0 {
			t.Errorf("%s: %d of %d GETs failed: %v", p.Name, p.Failed, p.Requests, p.Errors)
		}
	}
	st, _, code := e.run("status")
	if want := "hung: 4 health checks failed"; code != 0 || strings.Count(st, want) != len(victims) {
		t.Errorf("status (exit %d) does not show %q for both instances:\n%s", code, want, st)
	}
}
