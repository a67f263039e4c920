package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// multiConfig is a cutover.toml with apps a (hosts a.test) and b
// (b.test, canary), both the demo app.
func (e *env) multiConfig(extra string) {
	e.t.Helper()
	app := func(name, host, more string) string {
		return fmt.Sprintf(`
[apps.%[1]s]
command = "'%[2]s' demo-app"
instances = 2
stop_timeout = "5s"
hosts = [%[3]q]
[apps.%[1]s.health]
path = "/healthz"
interval = "100ms"
timeout = "1s"
healthy_after = 2
unhealthy_after = 2
boot_timeout = "20s"
%[4]s`, name, bin, host, more)
	}
	cfg := fmt.Sprintf("data_dir = \"data\"\n[proxy]\nlisten = \"127.0.0.1:%d\"\ndrain_timeout = \"10s\"\nhold_timeout = \"10s\"\n", e.port) +
		app("a", "a.test", "") +
		app("b", "b.test", "[apps.b.deploy]\nstrategy = \"canary\"\nsteps = [\"50%\"]\nstep_time = \"3s\"\nmin_requests = 20\n") + extra
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.client = e.client.App("a")
}

// TestTwoAppsByHost: two apps on one port, each under load from its own
// loader by Host; five deploys and a rollback of A while B ships a canary:
// no request of either fails, and every answer comes from the app its
// Host names (releases a* for A, b* for B).
func TestTwoAppsByHost(t *testing.T) {
	e := newEnv(t, settings{})
	e.multiConfig("")
	a1, a2 := e.release("a1", ""), e.release("a2", "")
	b1, b2 := e.release("b1", ""), e.release("b2", "")
	e.serve()
	ca, cb := e.client.App("a"), e.client.App("b")
	ctx := context.Background()
	for _, d := range []struct {
		c   *api.Client
		src string
	}{{ca, a1}, {cb, b1}} {
		if _, err := d.c.Deploy(ctx, deploy.Request{Source: d.src}, nil); err != nil {
			t.Fatalf("first deploy of %s: %v", d.src, err)
		}
	}
	genA := load.Start(load.Options{URL: e.url("/"), Host: "a.test", Rate: 300, FreshShare: 0.2, Timeout: 20 * time.Second, MaxDuration: 2 * time.Minute}, "a")
	genB := load.Start(load.Options{URL: e.url("/"), Host: "b.test", Rate: 300, FreshShare: 0.2, Timeout: 20 * time.Second, MaxDuration: 2 * time.Minute}, "b")
	var wg sync.WaitGroup
	wg.Add(1)
	var canaryErr error
	go func() {
		defer wg.Done()
		_, canaryErr = cb.Deploy(ctx, deploy.Request{Source: b2}, nil)
	}()
	for i := 0; i < 5; i++ {
		src := a2
		if i%2 == 1 {
			src = a1
		}
		if _, err := ca.Deploy(ctx, deploy.Request{Source: src}, nil); err != nil {
			t.Fatalf("deploy %d of A: %v", i+1, err)
		}
	}
	if _, err := ca.Deploy(ctx, deploy.Request{Rollback: true}, nil); err != nil {
		t.Fatalf("rollback of A: %v", err)
	}
	wg.Wait()
	repA, repB := genA.Stop(), genB.Stop()
	if canaryErr != nil {
		t.Errorf("canary of B: %v", canaryErr)
	}
	t.Logf("A: %d requests, %d failed, versions %v; B: %d requests, %d failed, versions %v",
		repA.Total.Requests, repA.Total.Failed, repA.Total.Versions, repB.Total.Requests, repB.Total.Failed, repB.Total.Versions)
	if repA.Total.Failed != 0 || repB.Total.Failed != 0 {
		t.Errorf("failed: A %d (%v), B %d (%v)", repA.Total.Failed, repA.Total.Errors, repB.Total.Failed, repB.Total.Errors)
	}
	for v := range repA.Total.Versions {
		if !strings.HasPrefix(v, "a") {
			t.Errorf("a.test was answered by %q", v)
		}
	}
	for v := range repB.Total.Versions {
		if !strings.HasPrefix(v, "b") {
			t.Errorf("b.test was answered by %q", v)
		}
	}
	// An unknown host names nothing internal.
	code, _, body, _ := getHost(e.url("/"), "nope.test")
	if code != 404 || strings.Contains(body, "a1") || strings.Contains(body, "b.test") {
		t.Errorf("unknown host: %d %q", code, body)
	}
	// status without --app lists both apps.
	out, stderr, c := e.run("status")
	if c != 0 || !strings.Contains(out, "app:     a") || !strings.Contains(out, "app:     b") {
		t.Errorf("status of two apps: exit %d\n%s%s", c, out, stderr)
	}
	// releases too, and --app picks one.
	out, stderr, c = e.run("releases")
	if c != 0 || !strings.Contains(out, "app a:") || !strings.Contains(out, "app b:") || !strings.Contains(out, "-b2") {
		t.Errorf("releases of two apps: exit %d\n%s%s", c, out, stderr)
	}
	out, stderr, c = e.run("--app", "b", "releases")
	if c != 0 || strings.Contains(out, "-a1") || !strings.Contains(out, "-b1") {
		t.Errorf("releases --app b: exit %d\n%s%s", c, out, stderr)
	}
	if _, stderr, c = e.run("--app", "nope", "status"); c == 0 || !strings.Contains(stderr, `no app "nope"`) {
		t.Errorf("status --app nope: exit %d, %s", c, stderr)
	}
}

// getHost is get with a Host header.
func getHost(url, host string) (int, string, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", "", err
	}
	req.Host = host
	// A connection of its own: a keep-alive one may still be served by
	// the daemon a reload replaced.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-App-Version"), string(b), nil
}

// TestAddAndRemoveAnApp: a third app added to the file and reloaded
// serves its host; removed and reloaded, its instances stop and its host
// gets 404; apps a and b, under load all along, lose no request.
func TestAddAndRemoveAnApp(t *testing.T) {
	e := newEnv(t, settings{})
	e.multiConfig("")
	a1, b1, c1 := e.release("a1", ""), e.release("b1", ""), e.release("c1", "")
	e.serve()
	ctx := context.Background()
	ca, cb := e.client.App("a"), e.client.App("b")
	for _, d := range []struct {
		c   *api.Client
		src string
	}{{ca, a1}, {cb, b1}} {
		if _, err := d.c.Deploy(ctx, deploy.Request{Source: d.src}, nil); err != nil {
			t.Fatalf("deploy %s: %v", d.src, err)
		}
	}
	genA := load.Start(load.Options{URL: e.url("/"), Host: "a.test", Rate: 300, FreshShare: 0.2, Timeout: 20 * time.Second, MaxDuration: 2 * time.Minute}, "a")
	genB := load.Start(load.Options{URL: e.url("/"), Host: "b.test", Rate: 300, FreshShare: 0.2, Timeout: 20 * time.Second, MaxDuration: 2 * time.Minute}, "b")
	third := fmt.Sprintf("\n[apps.c]\ncommand = \"'%s' demo-app\"\ninstances = 1\nhosts = [\"c.test\"]\n[apps.c.health]\npath = \"/healthz\"\ninterval = \"100ms\"\nhealthy_after = 2\n", bin)
	e.multiConfig(third)
	if out, stderr, code := e.run("reload"); code != 0 || !strings.Contains(out, "a, b, c") {
		t.Fatalf("reload adding c: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := e.client.App("c").Deploy(ctx, deploy.Request{Source: c1}, nil); err != nil {
		t.Fatalf("deploy c1: %v", err)
	}
	if code, v, _, _ := getHost(e.url("/"), "c.test"); code != 200 || v != "c1" {
		t.Fatalf("c.test after adding c: %d %q", code, v)
	}
	st, err := e.client.App("c").Status(ctx)
	if err != nil || len(st.Instances) != 1 {
		t.Fatalf("status of c: %+v %v", st, err)
	}
	cPID := st.Instances[0].PID
	e.multiConfig("")
	if out, stderr, code := e.run("reload"); code != 0 {
		t.Fatalf("reload removing c: exit %d\n%s%s", code, out, stderr)
	}
	// Once reload returned, the old daemon accepts no more: every new
	// connection meets the new config (the old one still routed c.test,
	// to instances the new one stops).
	for i := range 20 {
		if code, _, _, _ := getHost(e.url("/"), "c.test"); code != 404 {
			t.Errorf("c.test after removing c, request %d on a new connection: %d, want 404", i+1, code)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(cPID) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(cPID) {
		t.Errorf("c's instance pid %d still runs after c was removed", cPID)
	}
	time.Sleep(500 * time.Millisecond)
	repA, repB := genA.Stop(), genB.Stop()
	t.Logf("A: %d requests, %d failed; B: %d requests, %d failed", repA.Total.Requests, repA.Total.Failed, repB.Total.Requests, repB.Total.Failed)
	if repA.Total.Failed != 0 || repB.Total.Failed != 0 {
		t.Errorf("failed: A %d (%v), B %d (%v)", repA.Total.Failed, repA.Total.Errors, repB.Total.Failed, repB.Total.Errors)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
