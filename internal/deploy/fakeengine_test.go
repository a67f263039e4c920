package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/traffic"
)

// These fakes drive a whole Engine (New, Start, Control, Close) with
// no process, proxy or database: memJournal is the state, scriptTraffic
// the proxy, scriptFleet the instances, whose boots are scripted per
// release. newFakeEngine builds one; run it inside synctest.Test, so that
// boot_timeout, step_time, the watch, preview_timeout and drains pass in
// fake time.

// memJournal is an in-memory Journal.
type memJournal struct {
	mu       sync.Mutex
	releases []state.Release
	deploys  []state.Deploy
	kv       map[string]string
}

func (j *memJournal) BeginDeploy(ctx context.Context, d state.Deploy) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	d.ID = int64(len(j.deploys) + 1)
	d.State = state.DeployRunning
	j.deploys = append(j.deploys, d)
	return d.ID, nil
}

func (j *memJournal) deploy(id int64) *state.Deploy {
	if id < 1 || int(id) > len(j.deploys) {
		panic(fmt.Sprintf("no deploy #%d", id))
	}
	return &j.deploys[id-1]
}

func (j *memJournal) SetDeployRelease(ctx context.Context, id int64, release string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.deploy(id).Release = release
	return nil
}

func (j *memJournal) AddStep(ctx context.Context, id int64, st state.Step) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	d := j.deploy(id)
	d.Steps = append(d.Steps, st)
	return nil
}

func (j *memJournal) FinishDeploy(ctx context.Context, id int64, st state.DeployState, errText string, at time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	d := j.deploy(id)
	d.State, d.Error, d.FinishedAt = st, errText, at
	return nil
}

func (j *memJournal) InterruptRunning(ctx context.Context, at time.Time) ([]state.Deploy, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []state.Deploy
	for i := range j.deploys {
		if j.deploys[i].State == state.DeployRunning {
			j.deploys[i].State, j.deploys[i].FinishedAt = state.DeployInterrupted, at
			out = append(out, j.deploys[i])
		}
	}
	return out, nil
}

func (j *memJournal) Deploys(ctx context.Context, limit int, only state.DeployState) ([]state.Deploy, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []state.Deploy
	for i := len(j.deploys) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		if only == "" || j.deploys[i].State == only {
			out = append(out, j.deploys[i])
		}
	}
	return out, nil
}

func (j *memJournal) Active(ctx context.Context) (string, error) { return j.Get(ctx, "active_release") }

// SetActive retires the live release and makes id live, as state.Store
// does in one transaction.
func (j *memJournal) SetActive(ctx context.Context, id string, at time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	found := false
	for i := range j.releases {
		r := &j.releases[i]
		switch {
		case r.ID == id:
			r.Status, r.LiveSince, r.RetiredAt, found = state.ReleaseLive, at, time.Time{}, true
		case r.Status == state.ReleaseLive:
			r.Status, r.RetiredAt = state.ReleaseRetired, at
		}
	}
	if !found {
		return fmt.Errorf("activate %s: %w", id, state.ErrNotFound)
	}
	j.kvSet("active_release", id)
	return nil
}

func (j *memJournal) Release(ctx context.Context, id string) (state.Release, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range j.releases {
		if r.ID == id {
			return r, nil
		}
	}
	return state.Release{}, fmt.Errorf("release %s: %w", id, state.ErrNotFound)
}

func (j *memJournal) Releases(ctx context.Context) ([]state.Release, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.releases), nil
}

func (j *memJournal) LastRetired(ctx context.Context) (state.Release, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var last *state.Release
	for i := range j.releases {
		if r := &j.releases[i]; r.Status == state.ReleaseRetired && (last == nil || r.RetiredAt.After(last.RetiredAt)) {
			last = r
		}
	}
	if last == nil {
		return state.Release{}, fmt.Errorf("last retired release: %w", state.ErrNotFound)
	}
	return *last, nil
}

func (j *memJournal) PutRelease(ctx context.Context, r state.Release) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if i := slices.IndexFunc(j.releases, func(x state.Release) bool { return x.ID == r.ID }); i >= 0 {
		j.releases[i] = r
		return nil
	}
	j.releases = append(j.releases, r)
	return nil
}

func (j *memJournal) SetReleaseStatus(ctx context.Context, id string, st state.ReleaseStatus) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := range j.releases {
		if j.releases[i].ID == id {
			j.releases[i].Status = st
			return nil
		}
	}
	return fmt.Errorf("set release %s %s: %w", id, st, state.ErrNotFound)
}

func (j *memJournal) SetReleaseMeta(ctx context.Context, id, metaJSON string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := range j.releases {
		if j.releases[i].ID == id {
			j.releases[i].MetaJSON = metaJSON
			return nil
		}
	}
	return fmt.Errorf("record metadata of release %s: %w", id, state.ErrNotFound)
}

func (j *memJournal) Get(ctx context.Context, key string) (string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.kv[key], nil
}

func (j *memJournal) Set(ctx context.Context, key, value string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.kvSet(key, value)
	return nil
}

func (j *memJournal) kvSet(key, value string) {
	if j.kv == nil {
		j.kv = map[string]string{}
	}
	j.kv[key] = value
}

// status returns the recorded status of release id.
func (j *memJournal) status(id string) state.ReleaseStatus {
	r, err := j.Release(context.Background(), id)
	if err != nil {
		return ""
	}
	return r.Status
}

// lastDeploy returns the latest deploy recorded.
func (j *memJournal) lastDeploy() state.Deploy {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.deploys[len(j.deploys)-1]
}

// scriptTraffic is a Traffic that records what the engine asks of it in
// log ("active R", "weights R:N,…", "preview R", "hold", "unhold R",
// "failhold", "drain R") and answers Window with window.
type scriptTraffic struct {
	mu      sync.Mutex
	active  string
	weights map[string]int
	preview string
	holding bool
	failed  string // why a failed held switch refuses requests
	log     []string
	// window returns the measurements of release; nil: no requests.
	window func(release string, d time.Duration) traffic.WindowStats
}

func (t *scriptTraffic) say(format string, args ...any) {
	t.log = append(t.log, fmt.Sprintf(format, args...))
}

func (t *scriptTraffic) SetActive(release string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active, t.weights = release, nil
	t.say("active %s", release)
}

func (t *scriptTraffic) Active() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active
}

func (t *scriptTraffic) SetWeights(w map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.weights = maps.Clone(w)
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s:%d", r, w[r]))
	}
	t.say("weights %s", strings.Join(parts, ","))
}

func (t *scriptTraffic) Weights() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.weights)
}

func (t *scriptTraffic) SetPreview(release, token string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.preview = release
	t.say("preview %s", release)
}

func (t *scriptTraffic) Hold() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.holding = true
	t.say("hold")
}

func (t *scriptTraffic) Holding() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.holding
}

// WaitRequests takes fakeWait, as requests in flight would, unless ctx
// ends first.
func (t *scriptTraffic) WaitRequests(ctx context.Context, release string) traffic.InFlight {
	fakeSleep(ctx, fakeWait)
	return traffic.InFlight{Finished: 1}
}

func (t *scriptTraffic) Unhold(release string) traffic.HoldReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.holding, t.failed = false, ""
	if release != "" {
		t.active, t.weights = release, nil
	}
	t.say("unhold %s", release)
	return traffic.HoldReport{}
}

func (t *scriptTraffic) FailHold(why string) traffic.HoldReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.holding, t.failed = true, why
	t.say("failhold")
	return traffic.HoldReport{}
}

func (t *scriptTraffic) Drain(ctx context.Context, release string, pace time.Duration) traffic.DrainResult {
	t.mu.Lock()
	t.say("drain %s", release)
	t.mu.Unlock()
	if !fakeSleep(ctx, fakeWait) {
		return traffic.DrainResult{Cut: 1}
	}
	return traffic.DrainResult{Finished: 1}
}

func (t *scriptTraffic) Window(release string, d time.Duration) traffic.WindowStats {
	if t.window == nil {
		return traffic.WindowStats{}
	}
	return t.window(release, d)
}

func (t *scriptTraffic) Stats() map[string]traffic.ReleaseStats { return nil }

// bootScript is how the instances of a release boot in scriptFleet.
type bootScript struct {
	after time.Duration // healthy after this long (0: at once)
	crash bool          // exits after `after` instead
	never bool          // never healthy, never exits
}

// bootInst is an instance of scriptFleet.
type bootInst struct {
	id, release string
	app         config.App
	ready       chan struct{}
	crashed     chan string
	stopped     chan struct{}
}

func (m *bootInst) ID() string              { return m.id }
func (m *bootInst) Release() string         { return m.release }
func (m *bootInst) App() config.App         { return m.app }
func (m *bootInst) Ready() <-chan struct{}  { return m.ready }
func (m *bootInst) Crashed() <-chan string  { return m.crashed }
func (m *bootInst) Restarts() (int, string) { return 0, "" }
func (m *bootInst) BootState() string       { return "booting" }
func (m *bootInst) LastCheckError() error   { return nil }
func (m *bootInst) LogTail(n int) []string  { return nil }

// scriptFleet is a Fleet whose instances boot as script says for the
// release whose id ends in "-"+label (healthy at once when none does).
type scriptFleet struct {
	mu     sync.Mutex
	script map[string]bootScript
	insts  []*bootInst
	log    []string // "start ID", "stop ID,…", "drain ID,…", "close"
}

func (f *scriptFleet) say(format string, args ...any) {
	f.log = append(f.log, fmt.Sprintf(format, args...))
}

func (f *scriptFleet) Start(app config.App, release string, n int) (Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s bootScript
	for label, ls := range f.script {
		if strings.HasSuffix(release, "-"+label) {
			s = ls
		}
	}
	m := &bootInst{id: fmt.Sprintf("%s-%d", release, n), release: release, app: app,
		ready: make(chan struct{}), crashed: make(chan string, 1), stopped: make(chan struct{})}
	f.insts = append(f.insts, m)
	f.say("start %s", m.id)
	if !s.never {
		go func() {
			select {
			case <-time.After(s.after):
			case <-m.stopped:
				return
			}
			if s.crash {
				m.crashed <- "exit status 1"
			} else {
				close(m.ready)
			}
		}()
	}
	return m, nil
}

func (f *scriptFleet) stop(what string, ms []Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.say("%s %s", what, strings.Join(ids(ms), ","))
	f.insts = slices.DeleteFunc(f.insts, func(m *bootInst) bool {
		if slices.Contains(ms, Instance(m)) {
			close(m.stopped)
			return true
		}
		return false
	})
}

// Stop takes fakeWait, as instances that stop do, whatever ctx.
func (f *scriptFleet) Stop(ctx context.Context, ms []Instance) error {
	fakeSleep(context.Background(), fakeWait)
	f.stop("stop", ms)
	return nil
}

func (f *scriptFleet) StopAll(ctx context.Context) error { return f.Stop(ctx, f.AllBut("")) }

func (f *scriptFleet) Of(release string) []Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Instance
	for _, m := range f.insts {
		if m.release == release {
			out = append(out, m)
		}
	}
	return out
}

func (f *scriptFleet) AllBut(keep string) []Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Instance
	for _, m := range f.insts {
		if keep == "" || m.release != keep {
			out = append(out, m)
		}
	}
	return out
}

func (f *scriptFleet) Drain(ctx context.Context, ms []Instance, timeout time.Duration) error {
	fakeSleep(ctx, min(timeout, fakeWait))
	f.stop("drain", ms)
	return nil
}

func (f *scriptFleet) AnnounceDrain(ms []Instance, cutFrom time.Time) {}
func (f *scriptFleet) ClearDrain(ids ...string)                       {}
func (f *scriptFleet) Find() []state.Instance                         { return nil }
func (f *scriptFleet) Recover(ctx context.Context, active string, app config.App, found []state.Instance) {
}
func (f *scriptFleet) StartMissing(active string, app config.App)    {}
func (f *scriptFleet) Flush(ctx context.Context) error               { return nil }
func (f *scriptFleet) Status() []instance.Status                     { return nil }
func (f *scriptFleet) TrimLogs()                                     {}
func (f *scriptFleet) LogFiles(release, id string) ([]string, error) { return nil, nil }
func (f *scriptFleet) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.say("close")
}

// running returns the ids of the instances left running, sorted.
func (f *scriptFleet) running() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.insts {
		out = append(out, m.id)
	}
	slices.Sort(out)
	return out
}

// fakeWait is how long the fakes' waits for requests in flight take, so
// that a test can act while they run.
const fakeWait = 100 * time.Millisecond

// fakeSleep waits d, or until ctx ends: false then.
func fakeSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// noProcesses is a Processes with no process to stop.
type noProcesses struct{}

func (noProcesses) StartTime(pid int) (uint64, error)                             { return 0, errors.New("no such process") }
func (noProcesses) KillGroup(pgid int, start uint64, timeout time.Duration) error { return nil }

// fakeEngine is an Engine over fakes, in a temp dir holding its
// cutover.toml, its data dir and the release sources.
type fakeEngine struct {
	t       *testing.T
	root    string
	e       *Engine
	journal *memJournal
	traffic *scriptTraffic
	fleet   *scriptFleet
}

// newFakeEngine writes cutover.toml with deploy (lines of [deploy]) and
// returns an Engine over fakes; script says how each release boots.
func newFakeEngine(t *testing.T, deploy []string, script map[string]bootScript) *fakeEngine {
	t.Helper()
	root := t.TempDir()
	fe := &fakeEngine{t: t, root: root, journal: &memJournal{}, traffic: &scriptTraffic{}, fleet: &scriptFleet{script: script}}
	fe.writeConfig(deploy)
	cfg, err := config.Load(filepath.Join(root, "cutover.toml"))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	e, err := New(Options{Config: cfg, Store: fe.journal, Proxy: fe.traffic, Processes: noProcesses{},
		NewFleet: func(FleetOptions) Fleet { return fe.fleet }})
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	t.Cleanup(e.Close)
	fe.e = e
	return fe
}

// writeConfig writes cutover.toml: two instances, a boot_timeout of 10s,
// and deploy as [deploy].
func (fe *fakeEngine) writeConfig(deploy []string) {
	fe.t.Helper()
	lines := []string{
		`data_dir = "data"`,
		`[app]`, `name = "fakeapp"`, `command = "true"`, `instances = 2`,
		`[app.health]`, `path = "/healthz"`, `boot_timeout = "10s"`,
		`[proxy]`, `listen = "127.0.0.1:0"`, `drain_timeout = "2s"`,
		`[deploy]`,
	}
	lines = append(lines, deploy...)
	if err := os.WriteFile(filepath.Join(fe.root, "cutover.toml"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		fe.t.Fatal(err)
	}
}

// source writes a release source named label (the release's id ends in
// "-"+label).
func (fe *fakeEngine) source(label string) string {
	fe.t.Helper()
	dir := filepath.Join(fe.root, "src", label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fe.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(label+"\n"), 0o644); err != nil {
		fe.t.Fatal(err)
	}
	return dir
}
