package deploy

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestHungInstanceRestarted: an instance that stops answering (SIGSTOP:
// it neither exits nor serves) is killed and restarted after
// restart_after failed checks, the restart counted with the reason; a GET
// sent to it while it hung is answered by the restarted process. Before,
// it left rotation and stayed hung for good, and the GET waited for
// proxy.response_header_timeout.
func TestHungInstanceRestarted(t *testing.T) {
	const (
		interval     = 50 * time.Millisecond
		timeout      = 200 * time.Millisecond
		restartAfter = 4
	)
	h := newHarness(t, setup{instances: 1, health: []string{
		fmt.Sprintf("interval = %q", interval), fmt.Sprintf("timeout = %q", timeout),
		"healthy_after = 1", "unhealthy_after = 2", fmt.Sprintf("restart_after = %d", restartAfter),
	}})
	ctx := context.Background()
	v1 := h.mustDeploy("v1", nil)
	pid := h.pids(v1)[0]

	stopped := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// In flight on the hung instance (it is still in rotation for a
	// moment): it must get its answer from the restarted one.
	type answer struct {
		code    int
		version string
	}
	got := make(chan answer, 1)
	go func() {
		code, v := h.get("", "")
		got <- answer{code, v}
	}()

	deadline := time.Now().Add(waitTimeout)
	for {
		st, err := h.eng.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Instances) == 1 && st.Instances[0].Restarts == 1 && st.Instances[0].Healthy && st.Instances[0].PID != pid {
			in := st.Instances[0]
			want := fmt.Sprintf("hung: %d health checks failed", restartAfter)
			if in.LastExit != want {
				t.Errorf("last exit: got %q, want %q", in.LastExit, want)
			}
			killedIn, backIn := in.LastExitAt.Sub(stopped), time.Since(stopped)
			t.Logf("SIGSTOP → killed in %v, healthy again in %v (restart_after %d × timeout %v)", killedIn, backIn, restartAfter, timeout)
			// restart_after failures, each at most timeout+interval apart,
			// plus slack for a loaded machine.
			if limit := restartAfter*(timeout+interval) + 3*time.Second; killedIn > limit {
				t.Errorf("killed %v after SIGSTOP, want within %v", killedIn, limit)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hung instance was not restarted within %v: %+v", waitTimeout, st.Instances)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case a := <-got:
		if a.code != http.StatusOK || a.version != "v1" {
			t.Errorf("GET sent to the hung instance: got %d %q, want 200 %q", a.code, a.version, "v1")
		}
	case <-time.After(waitTimeout):
		t.Fatal("the GET sent to the hung instance got no answer")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the hung process %d still exists", pid)
	}
}

// TestRestartThatNeverTurnsHealthyRestarted: an instance restarted after a
// hang (or a crash) whose new process never turns healthy — it cannot be
// called hung, never having been healthy since — is killed and restarted
// again after boot_timeout, instead of staying out of rotation for good.
func TestRestartThatNeverTurnsHealthyRestarted(t *testing.T) {
	h := newHarness(t, setup{instances: 1, health: []string{
		`interval = "50ms"`, `timeout = "200ms"`, "healthy_after = 1", "unhealthy_after = 2", "restart_after = 4",
		`boot_timeout = "1s"`,
	}})
	ctx := context.Background()
	// Start 1 (the deploy's) serves, start 2 (after the hang) stalls.
	v1 := h.mustDeploy("v1", map[string]string{stallStartFile: "2\n"})
	pid := h.pids(v1)[0]
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	want := "hung: not healthy within app.health.boot_timeout (1s) of its restart"
	deadline := time.Now().Add(waitTimeout)
	for {
		st, err := h.eng.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Instances) == 1 && st.Instances[0].Restarts == 2 && st.Instances[0].Healthy {
			if got := st.Instances[0].LastExit; got != want {
				t.Errorf("last exit: got %q, want %q", got, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled restart was not restarted again within %v: %+v", waitTimeout, st.Instances)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.assertServes("v1")
}
