package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
)

// TestOperateCommands: init, status, releases, logs and logs -f as an
// operator uses them.
func TestOperateCommands(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1 := e.release("v1", "")

	// init writes a config that loads; it refuses to overwrite.
	initPath := filepath.Join(e.dir, "init", "cutover.toml")
	os.MkdirAll(filepath.Dir(initPath), 0o755)
	if out, stderr, code := e.runCfg(initPath, "init", "--name", "shop"); code != 0 {
		t.Fatalf("init: %d %s%s", code, out, stderr)
	}
	if _, stderr, code := e.runCfg(initPath, "init"); code != 2 || !strings.Contains(stderr, "already exists") {
		t.Errorf("second init: exit %d, %q; want 2 'already exists'", code, stderr)
	}
	if _, stderr, code := e.runCfg(initPath, "status"); code != 1 || !strings.Contains(stderr, "daemon is not running") {
		t.Errorf("status without a daemon: exit %d, %q; want 1 'daemon is not running'", code, stderr)
	}

	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	out, _, code := e.run("status", "--json")
	var st deploy.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Instances) != 2 || !st.Instances[0].Healthy {
		t.Fatalf("status --json: exit %d\n%s", code, out)
	}
	out, _, _ = e.run("status")
	for _, want := range []string{"live:", st.Active, "healthy", "INSTANCE"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, _, code = e.run("releases")
	if code != 0 || !strings.Contains(out, "live (current)") {
		t.Errorf("releases: exit %d\n%s", code, out)
	}

	out, _, code = e.run("logs", "-n", "5")
	if code != 0 || strings.Count(out, "listening on 127.0.0.1:") != 2 {
		t.Errorf("logs: exit %d; want both instances' start lines\n%s", code, out)
	}

	// logs -f shows the restart of a killed instance as it happens.
	cmd := exec.Command(bin, "-c", e.cfg, "logs", "-f", "-n", "0")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(st.Instances[0].PID, syscall.SIGKILL)
	deadline := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("logs -f ended")
			}
			if strings.Contains(l, "listening on") {
				return
			}
		case <-deadline:
			t.Fatal("logs -f did not show the restarted instance within 15s")
		}
	}
}

// runCfg runs the CLI with another config file.
func (e *env) runCfg(cfg string, args ...string) (string, string, int) {
	e.t.Helper()
	saved := e.cfg
	e.cfg = cfg
	defer func() { e.cfg = saved }()
	return e.run(args...)
}

// TestBrokenConfigOperate: with a typo in cutover.toml, status, logs,
// releases and rollback still reach the running daemon and warn with the
// file's error; deploy refuses with exit 2 and the file:line.
func TestBrokenConfigOperate(t *testing.T) {
	e := newEnv(t, settings{instances: 1})
	e.serve()
	for _, v := range []string{"v1", "v2"} {
		if _, _, err := e.deploy(deploy.Request{Source: e.release(v, "")}); err != nil {
			t.Fatal(err)
		}
	}
	good, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), "instances = 1", "instances = 1\nhealth_path = \"/healthz\"", 1)
	if err := os.WriteFile(e.cfg, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	where := e.cfg + ":6: app.health_path"
	warned := func(cmd, stderr string) {
		t.Helper()
		for _, want := range []string{"warning:", where, "data_dir " + filepath.Join(e.dir, "data")} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, stderr)
			}
		}
	}
	for _, args := range [][]string{{"status"}, {"releases"}, {"logs", "-n", "1"}} {
		out, stderr, code := e.run(args...)
		if code != 0 || out == "" {
			t.Errorf("%v with a broken config: exit %d\n%s%s", args, code, out, stderr)
		}
		warned(args[0], stderr)
	}

	out, stderr, code := e.run("rollback")
	if code != 0 || !strings.Contains(out, "the config file does not load") {
		t.Errorf("rollback with a broken config: exit %d\n%s%s", code, out, stderr)
	}
	warned("rollback", stderr)
	if v := e.status().Active; !strings.HasSuffix(v, "-v1") {
		t.Errorf("live after rollback = %q, want the v1 release", v)
	}

	_, stderr, code = e.run("deploy", e.release("v3", ""))
	if code != 2 || !strings.Contains(stderr, where) || strings.Contains(stderr, "warning:") {
		t.Errorf("deploy with a broken config: exit %d, %q; want 2 naming %s", code, stderr, where)
	}
}
