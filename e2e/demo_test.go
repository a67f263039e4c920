package e2e

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }
func sleepMS(n int)     { time.Sleep(time.Duration(n) * time.Millisecond) }

// TestDemo runs `cutover demo` as a newcomer would and checks its story.
func TestDemo(t *testing.T) {
	cmd := exec.Command(bin, "demo", "--pause", "700ms", "--rate", "150")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cutover demo: %v\n%s", err, out)
	}
	for _, want := range []string{"Deploy v1", "Deploy v2", "broken v3", "exited during boot", "Roll back", "0 failed", "canary 10%", "rolled it back on its own",
		"breaking  drop-column  column items.note", "refused: nothing migrated", "contract_command ok", "rename-column", "held_boot", "0 failed across 5 deploys", "And the other app, blog", "blog1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
