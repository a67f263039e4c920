package supervisor

import (
	"os/exec"
	"testing"
)

// TestProcEnv reads the environment a running process was started with.
func TestProcEnv(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.Env = []string{"NAILGUN_PORT=4567", "PORT=4566"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	env, err := ProcEnv(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if env["NAILGUN_PORT"] != "4567" || env["PORT"] != "4566" {
		t.Errorf("got %v", env)
	}
	if _, err := ProcEnv(-1); err == nil {
		t.Error("ProcEnv(-1): no error")
	}
}
