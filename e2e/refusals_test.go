package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/internal/deploy"
)

// TestRefusalsChangeNothing: a broken config, a missing deploy path and a
// second deploy while one runs are refused with a clear message and the
// right exit code, and the live release keeps serving.
func TestRefusalsChangeNothing(t *testing.T) {
	e := newEnv(t, settings{instances: 1})
	v1 := e.release("v1", "")
	slow := e.release("v2", "DEMO_BOOT_DELAY=2s\n")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	live := e.status().Active
	stillServing := func(when string) {
		t.Helper()
		if _, v, _, err := get(e.url("/")); err != nil || v != "v1" {
			t.Errorf("%s: got %q, %v; want v1 still serving", when, v, err)
		}
		if st := e.status(); st.Active != live {
			t.Errorf("%s: live release %q, want %q", when, st.Active, live)
		}
	}

	t.Run("missing path", func(t *testing.T) {
		_, stderr, code := e.run("deploy", filepath.Join(e.dir, "nope"))
		if code != 2 || !strings.Contains(stderr, "nope") || !strings.Contains(stderr, "no such file") {
			t.Errorf("exit %d, stderr %q; want exit 2 naming the path", code, stderr)
		}
		stillServing("after a missing path")
	})

	t.Run("broken config", func(t *testing.T) {
		good, err := os.ReadFile(e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(e.cfg, good, 0o644)
		broken := strings.Replace(string(good), "instances = 1", "instances = \"many\"", 1)
		if err := os.WriteFile(e.cfg, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		line := 0
		for i, l := range strings.Split(broken, "\n") {
			if strings.HasPrefix(l, "instances") {
				line = i + 1
			}
		}
		_, stderr, code := e.run("deploy", v1)
		want := "cutover.toml:" + itoa(line)
		if code != 2 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "app.instances") {
			t.Errorf("exit %d, stderr %q; want exit 2 with %q and app.instances", code, stderr, want)
		}
		stillServing("after a broken config")
	})

	t.Run("unknown key", func(t *testing.T) {
		bad := filepath.Join(e.dir, "bad.toml")
		os.WriteFile(bad, []byte("[app]\nname = \"x\"\ncommand = \"true\"\ninstancs = 2\n"), 0o644)
		cmd := exec.Command(bin, "-c", bad, "status")
		out, err := cmd.CombinedOutput()
		ee, _ := err.(*exec.ExitError)
		if ee == nil || ee.ExitCode() != 2 || !strings.Contains(string(out), "bad.toml:4") || !strings.Contains(string(out), "instancs") {
			t.Errorf("got %v %q; want exit 2 naming bad.toml:4 and instancs", err, out)
		}
	})

	t.Run("two deploys at once", func(t *testing.T) {
		var wg sync.WaitGroup
		wg.Add(1)
		var firstErr error
		go func() {
			defer wg.Done()
			_, _, firstErr = e.deploy(deploy.Request{Source: slow})
		}()
		// Wait until the first deploy holds the lock.
		for i := 0; i < 200 && e.status().Deploy == nil; i++ {
			sleepMS(10)
		}
		_, stderr, code := e.run("deploy", v1)
		if code != 1 || !strings.Contains(stderr, "another deploy is in progress") {
			t.Errorf("second deploy: exit %d, stderr %q; want exit 1 'another deploy is in progress'", code, stderr)
		}
		wg.Wait()
		if firstErr != nil {
			t.Errorf("first deploy: %v", firstErr)
		}
		if _, v, _, _ := get(e.url("/")); v != "v2" {
			t.Errorf("after the first deploy: %q, want v2", v)
		}
	})
}
