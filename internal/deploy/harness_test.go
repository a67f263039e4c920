package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/fleet"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
)

// waitTimeout bounds every wait of these tests for the engine or a process
// to do something; it is a failure deadline, not a pacing delay.
const waitTimeout = 20 * time.Second

// setup is what a test changes in the harness's cutover.toml.
type setup struct {
	instances int      // [app] instances; 0 = 1
	deploy    []string // extra lines of [deploy]
	release   []string // extra lines of [release]
	app       []string // extra lines of [app]
	env       []string // extra lines of [app.env]
	health    []string // lines of [app.health] replacing interval and healthy_after (and boot_timeout or timeout, if one sets it)
}

// harness is one app under a real in-process Engine: a temp data dir, a
// config loaded from a written cutover.toml, a state store, a proxy served
// on loopback, and the test binary as the app.
type harness struct {
	t    *testing.T
	root string // everything the test creates lives here
	cfg  *config.Config

	store *state.Store
	px    *proxy.Proxy
	eng   *Engine
	url   string // the proxy's base URL

	obsMu    sync.Mutex
	observed []observed // what Options.Observe was given, in order
}

// observed is one call of Options.Observe.
type observed struct {
	kind string
	ev   Event
}

// observe is the engines' Options.Observe.
func (h *harness) observe(kind string, ev Event) {
	h.obsMu.Lock()
	h.observed = append(h.observed, observed{kind, ev})
	h.obsMu.Unlock()
}

// observations returns what Options.Observe was given so far.
func (h *harness) observations() []observed {
	h.obsMu.Lock()
	defer h.obsMu.Unlock()
	return slices.Clone(h.observed)
}

// with makes the harness's helpers report to t, a subtest, until the
// returned func restores the parent: `defer h.with(t)()`.
func (h *harness) with(t *testing.T) func() {
	parent := h.t
	h.t = t
	return func() { h.t = parent }
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, root: root}
	h.writeConfig(s)
	cfg, err := config.Load(filepath.Join(root, "cutover.toml"))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	h.cfg = cfg
	// As the daemon does before it opens the state.
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(cfg.StatePath())
	if err != nil {
		t.Fatalf("open state: %v", err)
	}
	h.store = store
	t.Cleanup(func() {
		// Registered first, so it runs last: after the engines are done.
		if err := store.Close(); err != nil {
			t.Errorf("close state: %v", err)
		}
		h.assertNoProcesses()
	})
	h.newEngine()
	if err := h.eng.Recover(context.Background()); err != nil {
		t.Fatalf("recover: %v", err)
	}
	return h
}

// newEngine makes a fresh proxy (served on a new loopback listener) and a
// fresh Engine on the harness's data dir and store, and makes them the
// harness's own. The previous engine is not touched.
func (h *harness) newEngine() *Engine {
	t := h.t
	t.Helper()
	px := proxy.New(proxy.Options{
		App:           h.cfg.App.Name,
		HoldTimeout:   h.cfg.Proxy.HoldTimeout.Duration,
		Sticky:        h.cfg.Proxy.Sticky,
		Cookie:        h.cfg.Proxy.Cookie,
		VersionHeader: h.cfg.Proxy.VersionHeader,
		HideVersion:   h.cfg.Proxy.VersionHeader == "",
	})
	eng, err := New(Options{Config: h.cfg, Store: h.store, Proxy: px, Processes: supervisor.Groups{}, Observe: h.observe,
		NewFleet: func(o FleetOptions) Fleet {
			return fleet.New(fleet.Options{Config: h.cfg, Store: h.store, Proxy: px, Releases: o.Releases,
				StateFailed: o.StateFailed, Note: o.Note})
		}})
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := px.NewServer(h.cfg.Proxy.ReadHeaderTimeout.Duration, h.cfg.Proxy.IdleTimeout.Duration)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if h.eng == eng {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := eng.StopAll(ctx); err != nil {
				t.Errorf("stop all instances: %v", err)
			}
		}
		eng.Close()
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("proxy server: %v", err)
		}
	})
	h.px, h.eng, h.url = px, eng, "http://"+ln.Addr().String()
	return eng
}

// exe is the test binary, quoted for the shell.
func exe(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(p, "'") {
		t.Skipf("test binary path %q cannot be single-quoted", p)
	}
	return "'" + p + "'"
}

// writeConfig writes cutover.toml with short intervals so that a deploy
// takes a fraction of a second. Deploys re-read it, so a test may call it
// again between deploys.
func (h *harness) writeConfig(s setup) {
	h.t.Helper()
	n := s.instances
	if n == 0 {
		n = 1
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line(`data_dir = "data"`)
	line(`[app]`)
	line(`name = "testapp"`)
	line(`command = %s`, strconv.Quote(exe(h.t)))
	line(`instances = %d`, n)
	line(`stop_timeout = "5s"`)
	for _, l := range s.app {
		line("%s", l)
	}
	line(`[app.env]`)
	line(`%s = "1"`, appEnv)
	// A -race test binary sleeps 1s at exit by default; instances exit
	// often here.
	line(`GORACE = "atexit_sleep_ms=0"`)
	for _, l := range s.env {
		line("%s", l)
	}
	line(`[app.health]`)
	line(`path = "/healthz"`)
	health := s.health
	if !slices.ContainsFunc(health, func(l string) bool { return strings.HasPrefix(l, "timeout") }) {
		line(`timeout = "1s"`)
	}
	if !slices.ContainsFunc(health, func(l string) bool { return strings.HasPrefix(l, "boot_timeout") }) {
		line(`boot_timeout = "10s"`)
	}
	if len(health) == 0 {
		health = []string{`interval = "50ms"`, `healthy_after = 1`}
	}
	for _, l := range health {
		line("%s", l)
	}
	line(`[proxy]`)
	line(`listen = "127.0.0.1:0"`)
	line(`drain_timeout = "2s"`)
	line(`hold_timeout = "5s"`)
	line(`[deploy]`)
	for _, l := range s.deploy {
		line("%s", l)
	}
	line(`[release]`)
	for _, l := range s.release {
		line("%s", l)
	}
	if err := os.WriteFile(filepath.Join(h.root, "cutover.toml"), []byte(b.String()), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// source writes a release source directory named name (which becomes the
// release's label) whose app reports version name, plus files.
func (h *harness) source(name string, files map[string]string) string {
	h.t.Helper()
	dir := filepath.Join(h.root, "src", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	all := map[string]string{"VERSION": name + "\n"}
	maps.Copy(all, files)
	for p, body := range all {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	return dir
}

// deploy runs a deploy to its end and returns the live release, the events
// and the error.
func (h *harness) deploy(req Request) (string, []Event, error) {
	h.t.Helper()
	var evs []Event
	live, err := h.eng.Deploy(req, func(ev Event) { evs = append(evs, ev) })
	return live, evs, err
}

// mustDeploy deploys the source named name and returns the new release.
func (h *harness) mustDeploy(name string, files map[string]string) string {
	h.t.Helper()
	live, evs, err := h.deploy(Request{Source: h.source(name, files)})
	if err != nil {
		h.t.Fatalf("deploy %s: %v\nevents:\n%s", name, err, describe(evs))
	}
	if !strings.HasSuffix(live, "-"+name) {
		h.t.Fatalf("deploy %s: live release is %q, want one labelled %q", name, live, name)
	}
	return live
}

func describe(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %s %s %s %s %q\n", ev.Type, ev.Step, ev.Status, ev.Instance, ev.Message)
		for _, l := range ev.Lines {
			fmt.Fprintf(&b, "    | %s\n", l)
		}
	}
	return b.String()
}

// get requests / through the proxy, with header name: value when name is
// not empty, and returns the status and the version that answered.
func (h *harness) get(name, value string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url+"/", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if name != "" {
		req.Header.Set(name, value)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitTimeout}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatalf("GET / through the proxy: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("GET / through the proxy: %v", err)
	}
	return resp.StatusCode, strings.TrimPrefix(strings.TrimSpace(string(body)), "hello from ")
}

// assertServes checks that plain requests through the proxy reach version.
func (h *harness) assertServes(version string) {
	h.t.Helper()
	code, got := h.get("", "")
	if code != http.StatusOK || got != version {
		h.t.Errorf("GET / through the proxy: got %d %q, want 200 %q", code, got, version)
	}
}

// pids returns the pids of the engine's instances of release, sorted.
func (h *harness) pids(release string) []int {
	h.t.Helper()
	st, err := h.eng.Status(context.Background())
	if err != nil {
		h.t.Fatalf("status: %v", err)
	}
	var out []int
	for _, in := range st.Instances {
		if in.Release == release {
			out = append(out, in.PID)
		}
	}
	slices.Sort(out)
	return out
}

// releasesOfInstances returns the release of every instance the engine
// runs, sorted.
func (h *harness) releasesOfInstances() []string {
	h.t.Helper()
	st, err := h.eng.Status(context.Background())
	if err != nil {
		h.t.Fatalf("status: %v", err)
	}
	var out []string
	for _, in := range st.Instances {
		out = append(out, in.Release)
	}
	slices.Sort(out)
	return out
}

func (h *harness) releaseStatus(id string) state.ReleaseStatus {
	h.t.Helper()
	rec, err := h.store.Release(context.Background(), id)
	if err != nil {
		h.t.Fatalf("release %s: %v", id, err)
	}
	return rec.Status
}

func (h *harness) active() string {
	h.t.Helper()
	a, err := h.store.Active(context.Background())
	if err != nil {
		h.t.Fatalf("active release: %v", err)
	}
	return a
}

// lastDeploy returns the most recent deploy in the history.
func (h *harness) lastDeploy() state.Deploy {
	h.t.Helper()
	ds, err := h.store.Deploys(context.Background(), 1, "")
	if err != nil || len(ds) == 0 {
		h.t.Fatalf("deploy history: %v (%d deploys)", err, len(ds))
	}
	return ds[0]
}

// releaseLabelled finds the id of the release whose label is name.
func (h *harness) releaseLabelled(name string) string {
	h.t.Helper()
	rels, err := h.store.Releases(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range rels {
		if strings.HasSuffix(r.ID, "-"+name) {
			return r.ID
		}
	}
	h.t.Fatalf("no release labelled %q", name)
	return ""
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z'
}

// processesIn lists live processes whose working directory is dir or
// inside it, or whose command line names a file inside it: an instance's
// log writer (cutover-log-writer <log path> …), which runs in / and ends
// only once its instance's group is gone, and may still be creating or
// writing its log when a test ends; the temporary directory's removal then
// failed ("directory not empty").
func processesIn(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue
		}
		cwd = strings.TrimSuffix(cwd, " (deleted)")
		in := cwd == dir || strings.HasPrefix(cwd, dir+"/")
		if !in {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")) //nolint:errcheck // gone: not in dir
			in = slices.ContainsFunc(strings.Split(string(cmdline), "\x00"), func(arg string) bool { return strings.HasPrefix(arg, dir+"/") })
		}
		if in && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// assertNoProcesses fails the test if a process is left in the harness's
// directory, and kills it.
func (h *harness) assertNoProcesses() {
	h.t.Helper()
	// A group just sent SIGKILL takes a moment to die: give it that.
	left := processesIn(h.root)
	for deadline := time.Now().Add(2 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = processesIn(h.root) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(left) == 0 {
		return
	}
	h.t.Errorf("processes left running in %s: %v", h.root, left)
	for _, pid := range left {
		syscall.Kill(-pid, syscall.SIGKILL) //nolint:errcheck // it may not lead a group
		syscall.Kill(pid, syscall.SIGKILL)  //nolint:errcheck // best effort
	}
}

// waitEvent reads r's events from *i on until one satisfies match, and
// returns it. It fails the test when the run ends first.
func waitEvent(t *testing.T, r *Run, i *int, match func(Event) bool) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var seen []Event
	for {
		evs, done, err := r.Next(ctx, *i)
		if err != nil {
			t.Fatalf("waiting for an event: %v\nevents so far:\n%s", err, describe(seen))
		}
		for k, ev := range evs {
			seen = append(seen, ev)
			if match(ev) {
				*i += k + 1
				return ev
			}
		}
		*i += len(evs)
		if done {
			t.Fatalf("the run ended without the awaited event; events:\n%s", describe(seen))
		}
	}
}

// stepNames returns the names of the recorded steps.
func stepNames(steps []state.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Name+":"+s.Status)
	}
	return out
}

// countEvents counts events that satisfy match.
func countEvents(evs []Event, match func(Event) bool) int {
	n := 0
	for _, ev := range evs {
		if match(ev) {
			n++
		}
	}
	return n
}

func isStep(step Step, status string) func(Event) bool {
	return func(ev Event) bool { return ev.Type == "step" && ev.Step == step && ev.Status == status }
}

// waitDead waits until pid has exited. There is no channel for another
// process's death that works for a process this test did not start
// itself, so it polls /proc.
func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for alive(pid) {
		select {
		case <-deadline:
			t.Fatalf("pid %d still alive after %s", pid, waitTimeout)
		case <-tick.C:
		}
	}
}

// closeLikeADeadDaemon closes eng as a killed daemon leaves things: its
// instances keep running, but the proxy's upstream connections die with the
// daemon's process. (An engine closed in-process would keep them open, and
// an app's graceful shutdown then waits for those idle connections.)
func closeLikeADeadDaemon(eng *Engine) {
	ms := eng.instancesOf("", true)
	eng.Close()
	for _, m := range ms {
		eng.px.(*proxy.Proxy).RemoveBackend(m.ID())
	}
}
