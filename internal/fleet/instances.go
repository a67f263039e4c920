package fleet

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/health"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
	"github.com/cutover/cutover/internal/tcpproxy"
)

// Instance is one instance as the fleet sees it: the process, its proxy
// backend, and the health checker that moves the backend in and out of
// rotation. A crash replaces the checker, so a restarted instance must pass
// healthy_after checks again before it gets traffic.
type Instance struct {
	id      string
	release string
	app     config.App
	logPath string
	// tcpPorts are its ports of the app's [[app.tcp]] entries, by
	// port_env; nil without any.
	tcpPorts map[string]int

	mu      sync.Mutex     // guards the fields below
	backend *proxy.Backend // nil until the process runs
	inst    *supervisor.Instance
	checker *health.Checker
	stopChk context.CancelFunc
	chkDone <-chan struct{} // closed when checker is stopped or replaced
	crashed chan string     // receives the exit reason of crashes; buffered
	stopped bool

	// checks counts the health checks of every checker the instance had.
	checks health.Counts
}

func (m *Instance) status() supervisor.Status {
	m.mu.Lock()
	inst := m.inst
	m.mu.Unlock()
	if inst == nil {
		return supervisor.Status{Instance: m.id, Release: m.release}
	}
	return inst.Status()
}

// proxyBackend returns the instance's proxy backend, nil before it runs.
func (m *Instance) proxyBackend() *proxy.Backend {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.backend
}

func (m *Instance) healthy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checker != nil && m.checker.Healthy()
}

func (m *Instance) ready() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checker.Ready()
}

// register creates the managed record and its proxy backend before the
// process exists, so supervisor callbacks during Start find it.
func (f *Fleet) register(spec supervisor.Spec, app config.App) *Instance {
	m := &Instance{id: spec.Instance, release: spec.Release, app: app, logPath: spec.LogPath, crashed: make(chan string, 8),
		tcpPorts: tcpPorts(app, envLookup(spec.Env))}
	f.mu.Lock()
	f.insts[m.id] = m
	f.mu.Unlock()
	return m
}

func (f *Fleet) unregister(m *Instance) {
	f.mu.Lock()
	delete(f.insts, m.id)
	f.mu.Unlock()
}

// startInstance starts a new process for spec and begins health checking.
func (f *Fleet) startInstance(spec supervisor.Spec, app config.App) (*Instance, error) {
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o700); err != nil { // logs may hold secrets
		return nil, fmt.Errorf("start instance %s: %w", spec.Instance, err)
	}
	m := f.register(spec, app)
	f.ClearDrain(spec.Instance)
	inst, err := f.sup.Start(spec)
	if err != nil {
		f.unregister(m)
		return nil, fmt.Errorf("start instance %s: %w", spec.Instance, err)
	}
	f.attach(m, inst, false)
	return m, nil
}

// adoptInstance takes over a process a previous daemon started.
func (f *Fleet) adoptInstance(spec supervisor.Spec, app config.App, pid int, startTime uint64, past supervisor.History) (*Instance, error) {
	m := f.register(spec, app)
	inst, err := f.sup.Adopt(spec, pid, startTime, past)
	if err != nil {
		f.unregister(m)
		return nil, err
	}
	// It was serving a moment ago: one passing probe puts it straight back
	// in rotation, so a daemon restart costs no more than the restart.
	pctx, cancel := context.WithTimeout(f.ctx, app.Health.Timeout.Duration)
	ok := health.Check(pctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.Port)), healthConfig(app.Health)) == nil
	cancel()
	f.attach(m, inst, ok)
	return m, nil
}

// attach wires a running process to a proxy backend and a health checker;
// healthy puts it in rotation at once (an adopted instance that answered).
func (f *Fleet) attach(m *Instance, inst *supervisor.Instance, healthy bool) {
	st := inst.Status()
	m.mu.Lock()
	m.inst = inst
	m.mu.Unlock()
	b := f.px.AddBackend(proxy.BackendSpec{ID: m.id, Release: m.release, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(st.Port)),
		Protocol: upstreamProtocol(m.app)})
	m.mu.Lock()
	m.backend = b
	m.mu.Unlock()
	if f.tcp != nil && m.tcpPorts != nil {
		f.tcp.Add(tcpproxy.Instance{ID: m.id, Release: m.release, Number: instance.Number(m.id, m.release), Ports: m.tcpPorts})
	}
	f.persist(st)
	f.restartChecker(m, healthy)
}

// warmConns bounds how many upstream connections the proxy opens to an
// instance as soon as it answers a first health check (warmTarget), so
// the traffic a switch sends it does not pay for dozens of connects at
// once (a p99 bump at the switch). Opening them then, a check interval
// before the instance is healthy, also keeps that work apart from the
// switch and the old instance's exit, which follow the last check at once:
// on a small machine, work that coincides delays requests the most.
const warmConns = 16

// warmTarget is how many connections to open to self, a new instance (or
// one restarted after a crash): its share of those the proxy holds now to
// the instances in rotation (idle in their pools or carrying a request),
// the traffic's own measure of what it needs, shared among the instances
// of self's release; at least 1 and at most warmConns. An app with little
// traffic then costs a connect or two at a deploy, not sixteen.
func (f *Fleet) warmTarget(self *Instance) int {
	var serving []*proxy.Backend
	shares := 0
	f.mu.Lock()
	for _, m := range f.insts {
		if m.release == self.release {
			shares++
		}
		if m == self {
			continue
		}
		if b := m.proxyBackend(); b != nil && b.Healthy() {
			serving = append(serving, b)
		}
	}
	f.mu.Unlock()
	var conns int64
	for _, b := range serving {
		conns += int64(b.IdleConns()) + b.InFlight()
	}
	shares = max(shares, 1)
	share := (conns + int64(shares) - 1) / int64(shares)
	return int(min(max(share, 1), warmConns))
}

// restartChecker replaces the instance's health checker with a fresh one
// that starts unhealthy, or healthy (and in rotation) when told.
func (f *Fleet) restartChecker(m *Instance, healthy bool) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(m.status().Port))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopChk != nil {
		m.stopChk()
	}
	if m.stopped {
		return
	}
	b := m.backend
	hc := healthConfig(m.app.Health)
	hc.StartHealthy = healthy
	hc.OnFirstPass = func() { b.Warm(f.warmTarget(m)) }
	hc.Counts = &m.checks
	inst := m.inst
	hc.OnHung = func(fails int, err error) {
		// It served, then stopped answering, and time out of rotation did
		// not bring it back: a liveness failure. The kill is a crash to the
		// supervisor, so onInstanceChange takes it from here (a fresh
		// checker; the proxy resends what it may of the requests the
		// instance held, whose connections the kill closes).
		reason := fmt.Sprintf("hung: %d health checks failed", fails)
		f.log.Warn("instance hung; killing it to restart it", "instance", m.id, "pid", inst.Status().PID, "checks_failed", fails, "err", err)
		inst.Restart(reason)
	}
	chk := health.NewChecker(hc, addr, func(ok bool, err error) {
		if ok {
			// Back to full priority before the first request.
			inst.EndBoot()
		}
		b.SetHealthy(ok)
		f.tcpHealthy(m.id, ok)
		if ok {
			b.Warm(f.warmTarget(m))
		}
		if err != nil && !ok {
			f.log.Warn("instance unhealthy", "instance", m.id, "err", err)
		}
	})
	if healthy {
		inst.EndBoot()
		b.SetHealthy(true)
		f.tcpHealthy(m.id, true)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	m.checker, m.stopChk, m.chkDone = chk, cancel, ctx.Done()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		chk.Run(ctx) //nolint:errcheck // returns ctx.Err() when stopped
	}()
}

// onInstanceChange is the supervisor's callback: it records the instance
// and, on a crash, takes it out of rotation at once.
func (f *Fleet) onInstanceChange(st supervisor.Status) {
	f.mu.Lock()
	m := f.insts[st.Instance]
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return
	}
	if st.State == supervisor.Stopped {
		if err := f.store.DeleteInstance(f.ctx, st.Instance); err != nil {
			f.markUnsaved("forget instance "+st.Instance, err)
		}
		return
	}
	f.persist(st)
	if m != nil && st.State == supervisor.Running && st.Restarts > 0 && !st.Adopted {
		f.watchRestart(m, st)
	}
	if m == nil || st.State != supervisor.Backoff {
		return
	}
	// Crashed: no traffic until it is back and healthy again.
	if b := m.proxyBackend(); b != nil {
		b.SetHealthy(false)
	}
	if f.tcp != nil {
		f.tcp.SetHTTPHealthy(m.id, false)
		f.tcp.Down(m.id)
	}
	f.log.Warn("instance crashed", "instance", st.Instance, "pid", st.PID, "exit", st.LastExit, "restarts", st.Restarts)
	select {
	case m.crashed <- st.LastExit:
	default:
	}
	if m.proxyBackend() != nil {
		f.restartChecker(m, false)
	}
}

// watchRestart kills and restarts again an instance that a crash or a
// hang restarted (st: its new process running) if it is not healthy within
// app.health.boot_timeout: its health checks cannot call it hung, since it
// has not been healthy since the restart, and it would otherwise stay out
// of rotation for good. It ends as soon as the instance is healthy, or its
// checker is stopped or replaced (a crash, a stop).
func (f *Fleet) watchRestart(m *Instance, st supervisor.Status) {
	timeout := m.app.Health.BootTimeout.Duration
	m.mu.Lock()
	chk, done, inst, stopped := m.checker, m.chkDone, m.inst, m.stopped
	m.mu.Unlock()
	if chk == nil || inst == nil || stopped || timeout <= 0 {
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-chk.Ready():
			return
		case <-done:
			return
		case <-t.C:
		}
		if inst.Status().PID != st.PID {
			return // another process already
		}
		reason := fmt.Sprintf("hung: not healthy within app.health.boot_timeout (%s) of its restart", timeout)
		f.log.Warn("restarted instance never turned healthy; killing it to restart it", "instance", m.id, "pid", st.PID,
			"boot_timeout", timeout, "err", chk.LastError())
		inst.Restart(reason)
	}()
}

func (f *Fleet) persist(st supervisor.Status) {
	if st.PID == 0 {
		return
	}
	err := f.store.PutInstance(f.ctx, state.Instance{
		ID: st.Instance, Release: st.Release, PID: st.PID, StartTime: st.StartTime, Port: st.Port,
		State: st.State.String(), Restarts: st.Restarts, LastExit: st.LastExit, UpdatedAt: time.Now(),
	})
	if err != nil {
		f.markUnsaved("record instance "+st.Instance, err)
	}
}

// stopInstances takes instances out of rotation and stops them in
// parallel, each with its own stop_timeout.
func (f *Fleet) stopInstances(ctx context.Context, ms []*Instance) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		m.mu.Lock()
		m.stopped = true
		if m.stopChk != nil {
			m.stopChk()
		}
		inst := m.inst
		m.mu.Unlock()
		if b := m.proxyBackend(); b != nil {
			b.SetHealthy(false)
		}
		// Out of the routing table and its idle upstream connections
		// closed before the stop signal: an idle connection that never
		// carried a request would make a Go app's graceful shutdown wait
		// for it (net/http treats new connections as active for 5s).
		f.px.RemoveBackend(m.id)
		if f.tcp != nil {
			f.tcp.Remove(m.id)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if inst != nil {
				sctx, cancel := context.WithTimeout(ctx, m.app.StopTimeout.Duration+5*time.Second)
				errs[i] = inst.Stop(sctx)
				cancel()
			}
			f.unregister(m)
			if err := f.store.DeleteInstance(context.WithoutCancel(ctx), m.id); err != nil {
				f.markUnsaved("forget instance "+m.id, err)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("stop instance %s: %w", ms[i].id, err)
		}
	}
	return nil
}

// instancesOf returns the instances of one release, or of every release
// but one when not is true.
func (f *Fleet) instancesOf(release string, not bool) []*Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Instance
	for _, m := range f.insts {
		if (m.release == release) != not {
			out = append(out, m)
		}
	}
	return out
}

// Of returns the instances of release.
func (f *Fleet) Of(release string) []instance.Handle { return handles(f.instancesOf(release, false)) }

// AllBut returns the instances of every release but keep; AllBut("") is
// every instance.
func (f *Fleet) AllBut(keep string) []instance.Handle { return handles(f.instancesOf(keep, true)) }

// Start starts instance n of release with app's configuration (port 0:
// a free one) and begins health checking; it is in rotation once healthy.
func (f *Fleet) Start(app config.App, release string, n int) (instance.Handle, error) {
	spec, err := f.spec(app, release, n, 0, nil)
	if err != nil {
		return nil, err
	}
	m, err := f.startInstance(spec, app)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Stop takes instances out of rotation and stops them in parallel, each
// with its own stop_timeout; their rows are deleted. ms are instances of
// this Fleet (from Start, Of or AllBut).
func (f *Fleet) Stop(ctx context.Context, ms []instance.Handle) error {
	return f.stopInstances(ctx, instances(ms))
}

// handles returns ms as the handles its users hold.
func handles(ms []*Instance) []instance.Handle {
	if ms == nil {
		return nil
	}
	out := make([]instance.Handle, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// instances returns the instances behind hs, which this package handed
// out: any other Handle is a bug of the caller's.
func instances(hs []instance.Handle) []*Instance {
	out := make([]*Instance, len(hs))
	for i, h := range hs {
		out[i] = h.(*Instance)
	}
	return out
}

// tcpHealthy tells the TCP ports the instance's HTTP health.
func (f *Fleet) tcpHealthy(id string, ok bool) {
	if f.tcp != nil {
		f.tcp.SetHTTPHealthy(id, ok)
	}
}
