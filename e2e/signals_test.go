package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cutover/cutover/internal/deploy"
)

// TestInstancesStartWithDefaultSignals: the daemon catches SIGHUP (it is
// the keeper's word for an upgrade), but the app's instances must start
// with SIGHUP at its default. The daemon used to ignore SIGHUP, and
// an ignored signal stays ignored across fork and exec: every instance
// (and its `/bin/sh -c`, which cannot trap a signal ignored at its start)
// ran deaf to SIGHUP.
func TestInstancesStartWithDefaultSignals(t *testing.T) {
	e := newEnv(t, settings{instances: 1})
	v1 := e.release("v1", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	for _, pid := range e.instancePIDs() {
		ign, err := sigIgn(pid)
		if err != nil {
			t.Fatal(err)
		}
		// Only SIGHUP is the daemon's doing; what the daemon's own parent
		// ignores (a CI runner's signals) is inherited by design.
		if ign&(1<<(syscall.SIGHUP-1)) != 0 {
			t.Errorf("instance pid %d starts with SIGHUP ignored (SigIgn %#x)", pid, ign)
		}
	}
}

// sigIgn returns the mask of signals pid ignores, from /proc/<pid>/status.
func sigIgn(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no SigIgn in /proc/%d/status", pid)
}
