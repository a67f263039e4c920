package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/supervisor"
)

// waitTimeout bounds every wait of these tests; it is a failure deadline,
// not a pacing delay.
const waitTimeout = 20 * time.Second

// writeConfig writes a cutover.toml whose app is the test binary and
// loads it.
func writeConfig(t *testing.T, root string) *config.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf(`[app]
name = "daemontest"
command = %s
instances = 2
stop_timeout = "5s"
[app.env]
%s = "1"
GORACE = "atexit_sleep_ms=0"
[app.health]
path = "/healthz"
interval = "50ms"
healthy_after = 1
boot_timeout = "10s"
[proxy]
listen = "127.0.0.1:0"
drain_timeout = "2s"
`, strconv.Quote("'"+exe+"'"), appEnv)
	path := filepath.Join(root, "cutover.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	return cfg
}

// running is one daemon.Run in a goroutine.
type running struct {
	proxy string     // the proxy's address
	done  chan error // receives Run's result
	stop  context.CancelFunc
}

func start(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	r := &running{done: make(chan error, 1), stop: cancel}
	go func() {
		r.done <- Run(ctx, Options{Config: cfg, Logger: slog.New(slog.DiscardHandler), Ready: func(addr string) { ready <- addr }})
	}()
	select {
	case r.proxy = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("daemon exited at start: %v", err)
	case <-time.After(waitTimeout):
		cancel()
		t.Fatalf("daemon not ready after %s", waitTimeout)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done: // already returned, or returns now
		case <-time.After(waitTimeout):
			t.Errorf("daemon did not return %s after its context ended", waitTimeout)
		}
	})
	return r
}

// wait waits for Run to return and returns its error.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("daemon did not return within %s", waitTimeout)
		return nil
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitTimeout}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %d %q, want 200", url, resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b))
}

// TestRunLifecycle starts a daemon, checks its lock and socket, deploys,
// and checks that cancelling it leaves the app running for the next daemon,
// which adopts the same processes; `stop` then takes everything down.
func TestRunLifecycle(t *testing.T) {
	// A short directory: a unix socket path must fit in 108 bytes.
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := writeConfig(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	d1 := start(t, cfg)

	t.Run("a second daemon on the same data dir is refused", func(t *testing.T) {
		err := Run(ctx, Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
		if err == nil || !strings.Contains(err.Error(), "another cutover daemon") {
			t.Errorf("second Run: got %v, want the data dir lock refusal", err)
		}
	})

	fi, err := os.Lstat(cfg.SocketPath())
	if err != nil {
		t.Fatalf("admin socket: %v", err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket %s: got mode %v, want a socket with 0600", cfg.SocketPath(), fi.Mode())
	}

	client := api.NewClient(cfg.SocketPath())
	src := filepath.Join(root, "src", "v1")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "VERSION"), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := client.Deploy(ctx, deploy.Request{Source: src}, nil)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if got := get(t, "http://"+d1.proxy+"/"); got != "hello from v1" {
		t.Errorf("GET / through the proxy: got %q, want %q", got, "hello from v1")
	}
	st, err := client.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var pids []int
	for _, in := range st.Instances {
		pids = append(pids, in.PID)
		start, err := supervisor.ProcStartTime(in.PID)
		if err != nil {
			t.Fatalf("instance %s: %v", in.ID, err)
		}
		t.Cleanup(func() {
			// Whatever happened, no instance outlives the test.
			if err := supervisor.KillGroup(in.PID, start, 5*time.Second); err != nil && !errors.Is(err, supervisor.ErrGone) {
				t.Errorf("kill instance %s: %v", in.ID, err)
			}
		})
	}
	slices.Sort(pids)
	if len(pids) != 2 {
		t.Fatalf("instances: got %+v, want 2", st.Instances)
	}

	d1.stop()
	if err := d1.wait(t); err != nil {
		t.Errorf("Run after its context ended: got %v, want nil", err)
	}
	if _, err := os.Lstat(cfg.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket after shutdown: got %v, want it removed", err)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Errorf("instance pid %d died with the daemon; it must keep serving", pid)
		}
	}
	for _, in := range st.Instances {
		if got := get(t, fmt.Sprintf("http://127.0.0.1:%d/", in.Port)); got != "hello from v1" {
			t.Errorf("instance %s with no daemon: got %q, want %q", in.ID, got, "hello from v1")
		}
	}

	// The lock went with the first daemon: a new one starts and adopts.
	d2 := start(t, cfg)
	st2, err := client.Status(ctx)
	if err != nil {
		t.Fatalf("status of the second daemon: %v", err)
	}
	var pids2 []int
	for _, in := range st2.Instances {
		pids2 = append(pids2, in.PID)
		if !in.Adopted || in.Release != res.Release {
			t.Errorf("instance %s: got release %q adopted=%v, want %q adopted", in.ID, in.Release, in.Adopted, res.Release)
		}
	}
	slices.Sort(pids2)
	if !slices.Equal(pids2, pids) {
		t.Errorf("pids under the second daemon: got %v, want the same processes %v", pids2, pids)
	}
	if got := get(t, "http://"+d2.proxy+"/"); got != "hello from v1" {
		t.Errorf("GET / through the second daemon's proxy: got %q, want %q", got, "hello from v1")
	}

	if err := client.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := d2.wait(t); err != nil {
		t.Errorf("Run after stop: got %v, want nil", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("instance pid %d still runs after `stop`", pid)
		}
	}
}

func TestWarnEphemeral(t *testing.T) {
	lo, hi := freeport.EphemeralRange()
	for _, c := range []struct {
		port int
		warn bool
	}{
		{lo, true},
		{hi, true},
		{lo - 1, false},
		{80, false},
	} {
		var buf bytes.Buffer
		warnEphemeral(slog.New(slog.NewTextHandler(&buf, nil)), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.port}, "proxy.listen", "/etc/cutover.toml")
		got := buf.String()
		if c.warn != (got != "") {
			t.Errorf("port %d (ephemeral range %d-%d): logged %q, want a warning: %v", c.port, lo, hi, got, c.warn)
		}
		if c.warn && (!strings.Contains(got, "key=proxy.listen") || !strings.Contains(got, fmt.Sprintf("port=%d", c.port)) || !strings.Contains(got, "/etc/cutover.toml")) {
			t.Errorf("port %d: warning %q does not name the key, the port and the config", c.port, got)
		}
	}
}
