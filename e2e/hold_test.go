package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// TestAllInstancesKilledUnderLoad: kill -9 of every instance of the live
// release at once fails no request: the proxy holds them (hold_timeout,
// 10s here) until the supervisor's restarts are healthy again.
func TestAllInstancesKilledUnderLoad(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1 := e.release("v1", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	victims := e.status().Instances
	if len(victims) != 2 {
		t.Fatalf("instances: got %d, want 2: %+v", len(victims), victims)
	}
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 400, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
	time.Sleep(500 * time.Millisecond)
	gen.Mark("kill -9 of all")
	for _, v := range victims {
		if err := syscall.Kill(v.PID, syscall.SIGKILL); err != nil {
			gen.Stop()
			t.Fatal(err)
		}
	}
	killed := time.Now()
	// Wait for both restarts to be back in rotation.
	var back bool
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !back; {
		n := 0
		for _, in := range e.status().Instances {
			for _, v := range victims {
				if in.ID == v.ID && in.Healthy && in.PID != v.PID {
					n++
				}
			}
		}
		back = n == len(victims)
		time.Sleep(50 * time.Millisecond)
	}
	downFor := time.Since(killed)
	gen.Mark("after restart")
	time.Sleep(500 * time.Millisecond)
	rep := gen.Stop()
	var sb strings.Builder
	rep.Print(&sb)
	t.Logf("load report:\n%s", sb.String())
	if !back {
		t.Fatalf("instances were not restarted and healthy within 15s: %+v", e.status().Instances)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d GETs failed after kill -9 of all instances: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	held := rep.Phases[1]
	t.Logf("instances back in rotation %s after the kill; requests sent meanwhile: %d, the longest held %s",
		downFor.Round(time.Millisecond), held.Requests, held.Max.Round(time.Millisecond))
	if held.Max >= 10*time.Second {
		t.Errorf("longest request after the kill took %s; want under hold_timeout (10s)", held.Max)
	}
}
