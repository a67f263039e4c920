package deploy

import (
	"os/exec"
	"strings"
	"testing"
)

// The engine talks to the proxy, the supervisor and the instances only
// through the seams it declares (seams.go): nothing it builds on may
// import them, so that the state machine can run over fakes, and over a
// shared store for several hosts later.
func TestSeamsKeepDeployOffTheProxyAndSupervisor(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, to list the package's imports: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages (%q); want the whole import graph", len(deps), deps)
	}
	const mod = "github.com/cutover/cutover/internal/"
	for _, d := range deps {
		switch strings.TrimPrefix(d, mod) {
		case "proxy", "supervisor", "fleet", "health", "h1":
			t.Errorf("internal/deploy depends on %s: it must reach it through its seams (Traffic, Fleet, Processes)", d)
		}
	}
}
