package deploy

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
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
)

// managed is one instance as the engine sees it: the process, its proxy
// backend, and the health checker that moves the backend in and out of
// rotation. A crash replaces the checker, so a restarted instance must pass
// healthy_after checks again before it gets traffic.
type managed struct {
	id      string
	release string
	app     config.App

	mu      sync.Mutex     // guards the fields below
	backend *proxy.Backend // nil until the process runs
	inst    *supervisor.Instance
	checker *health.Checker
	stopChk context.CancelFunc
	chkDone <-chan struct{} // closed when checker is stopped or replaced
	crashed chan string     // receives the exit reason of crashes; buffered
	stopped bool
}

func (m *managed) status() supervisor.Status {
	m.mu.Lock()
	inst := m.inst
	m.mu.Unlock()
	if inst == nil {
		return supervisor.Status{Instance: m.id, Release: m.release}
	}
	return inst.Status()
}

// proxyBackend returns the instance's proxy backend, nil before it runs.
func (m *managed) proxyBackend() *proxy.Backend {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.backend
}

func (m *managed) healthy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checker != nil && m.checker.Healthy()
}

func (m *managed) ready() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checker.Ready()
}

func healthConfig(h config.Health) health.Config {
	return health.Config{
		Path:           h.Path,
		Interval:       h.Interval.Duration,
		Timeout:        h.Timeout.Duration,
		HealthyAfter:   h.HealthyAfter,
		UnhealthyAfter: h.UnhealthyAfter,
		RestartAfter:   h.RestartAfter,
	}
}

// instanceEnv is the environment of an instance: cutover's own, then the
// app's [app.env]. PORT is added by the supervisor.
func instanceEnv(app config.App, releaseID string) []string {
	env := os.Environ()
	for k, v := range app.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, "CUTOVER_RELEASE="+releaseID, "CUTOVER_APP="+app.Name)
	return env
}

func (e *Engine) spec(app config.App, releaseID string, n int, port int) supervisor.Spec {
	id := releaseID + "-" + strconv.Itoa(n)
	return supervisor.Spec{
		App:         app.Name,
		Release:     releaseID,
		Instance:    id,
		Dir:         e.rel.Dir(releaseID),
		Command:     app.Command,
		Env:         append(instanceEnv(app, releaseID), drainFileEnv+"="+drainFile(e.Config(), id)),
		Port:        port,
		StopSignal:  app.Signal,
		StopTimeout: app.StopTimeout.Duration,
		LogPath:     filepath.Join(e.Config().LogsDir(), releaseID, id+".log"),
		LogMaxSize:  app.LogMaxSize,
		BootNice:    app.BootNice,
	}
}

// register creates the managed record and its proxy backend before the
// process exists, so supervisor callbacks during Start find it.
func (e *Engine) register(spec supervisor.Spec, app config.App) *managed {
	m := &managed{id: spec.Instance, release: spec.Release, app: app, crashed: make(chan string, 8)}
	e.mu.Lock()
	e.insts[m.id] = m
	e.mu.Unlock()
	return m
}

func (e *Engine) unregister(m *managed) {
	e.mu.Lock()
	delete(e.insts, m.id)
	e.mu.Unlock()
}

// startInstance starts a new process for spec and begins health checking.
func (e *Engine) startInstance(spec supervisor.Spec, app config.App) (*managed, error) {
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o700); err != nil { // logs may hold secrets
		return nil, fmt.Errorf("start instance %s: %w", spec.Instance, err)
	}
	m := e.register(spec, app)
	e.clearDrain(spec.Instance)
	inst, err := e.sup.Start(spec)
	if err != nil {
		e.unregister(m)
		return nil, fmt.Errorf("start instance %s: %w", spec.Instance, err)
	}
	e.attach(m, inst, false)
	return m, nil
}

// adoptInstance takes over a process a previous daemon started.
func (e *Engine) adoptInstance(spec supervisor.Spec, app config.App, pid int, startTime uint64, past supervisor.History) (*managed, error) {
	m := e.register(spec, app)
	inst, err := e.sup.Adopt(spec, pid, startTime, past)
	if err != nil {
		e.unregister(m)
		return nil, err
	}
	// It was serving a moment ago: one passing probe puts it straight back
	// in rotation, so a daemon restart costs no more than the restart.
	pctx, cancel := context.WithTimeout(e.ctx, app.Health.Timeout.Duration)
	ok := health.Probe(pctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.Port)), app.Health.Path) == nil
	cancel()
	e.attach(m, inst, ok)
	return m, nil
}

// attach wires a running process to a proxy backend and a health checker;
// healthy puts it in rotation at once (an adopted instance that answered).
func (e *Engine) attach(m *managed, inst *supervisor.Instance, healthy bool) {
	st := inst.Status()
	m.mu.Lock()
	m.inst = inst
	m.mu.Unlock()
	b := e.px.AddBackend(proxy.BackendSpec{ID: m.id, Release: m.release, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(st.Port))})
	m.mu.Lock()
	m.backend = b
	m.mu.Unlock()
	e.persist(st)
	e.restartChecker(m, healthy)
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
func (e *Engine) warmTarget(self *managed) int {
	var serving []*proxy.Backend
	shares := 0
	e.mu.Lock()
	for _, m := range e.insts {
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
	e.mu.Unlock()
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
func (e *Engine) restartChecker(m *managed, healthy bool) {
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
	hc.OnFirstPass = func() { b.Warm(e.warmTarget(m)) }
	inst := m.inst
	hc.OnHung = func(fails int, err error) {
		// It served, then stopped answering, and time out of rotation did
		// not bring it back: a liveness failure. The kill is a crash to the
		// supervisor, so onInstanceChange takes it from here (a fresh
		// checker; the proxy resends what it may of the requests the
		// instance held, whose connections the kill closes).
		reason := fmt.Sprintf("hung: %d health checks failed", fails)
		e.log.Warn("instance hung; killing it to restart it", "instance", m.id, "pid", inst.Status().PID, "checks_failed", fails, "err", err)
		inst.Restart(reason)
	}
	chk := health.NewChecker(hc, addr, func(ok bool, err error) {
		if ok {
			// Back to full priority before the first request.
			inst.EndBoot()
		}
		b.SetHealthy(ok)
		if ok {
			b.Warm(e.warmTarget(m))
		}
		if err != nil && !ok {
			e.log.Warn("instance unhealthy", "instance", m.id, "err", err)
		}
	})
	if healthy {
		inst.EndBoot()
		b.SetHealthy(true)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	m.checker, m.stopChk, m.chkDone = chk, cancel, ctx.Done()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		chk.Run(ctx) //nolint:errcheck // returns ctx.Err() when stopped
	}()
}

// onInstanceChange is the supervisor's callback: it records the instance
// and, on a crash, takes it out of rotation at once.
func (e *Engine) onInstanceChange(st supervisor.Status) {
	e.mu.Lock()
	m := e.insts[st.Instance]
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return
	}
	if st.State == supervisor.Stopped {
		if err := e.store.DeleteInstance(e.ctx, st.Instance); err != nil {
			e.markUnsaved("forget instance "+st.Instance, err)
		}
		return
	}
	e.persist(st)
	if m != nil && st.State == supervisor.Running && st.Restarts > 0 && !st.Adopted {
		e.watchRestart(m, st)
	}
	if m == nil || st.State != supervisor.Backoff {
		return
	}
	// Crashed: no traffic until it is back and healthy again.
	if b := m.proxyBackend(); b != nil {
		b.SetHealthy(false)
	}
	e.log.Warn("instance crashed", "instance", st.Instance, "pid", st.PID, "exit", st.LastExit, "restarts", st.Restarts)
	select {
	case m.crashed <- st.LastExit:
	default:
	}
	if m.proxyBackend() != nil {
		e.restartChecker(m, false)
	}
}

// watchRestart kills and restarts again an instance that a crash or a
// hang restarted (st: its new process running) if it is not healthy within
// app.health.boot_timeout: its health checks cannot call it hung, since it
// has not been healthy since the restart, and it would otherwise stay out
// of rotation for good. It ends as soon as the instance is healthy, or its
// checker is stopped or replaced (a crash, a stop).
func (e *Engine) watchRestart(m *managed, st supervisor.Status) {
	timeout := m.app.Health.BootTimeout.Duration
	m.mu.Lock()
	chk, done, inst, stopped := m.checker, m.chkDone, m.inst, m.stopped
	m.mu.Unlock()
	if chk == nil || inst == nil || stopped || timeout <= 0 {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
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
		e.log.Warn("restarted instance never turned healthy; killing it to restart it", "instance", m.id, "pid", st.PID,
			"boot_timeout", timeout, "err", chk.LastError())
		inst.Restart(reason)
	}()
}

func (e *Engine) persist(st supervisor.Status) {
	if st.PID == 0 {
		return
	}
	err := e.store.PutInstance(e.ctx, state.Instance{
		ID: st.Instance, Release: st.Release, PID: st.PID, StartTime: st.StartTime, Port: st.Port,
		State: st.State.String(), Restarts: st.Restarts, LastExit: st.LastExit, UpdatedAt: time.Now(),
	})
	if err != nil {
		e.markUnsaved("record instance "+st.Instance, err)
	}
}

// stopInstances takes instances out of rotation and stops them in
// parallel, each with its own stop_timeout.
func (e *Engine) stopInstances(ctx context.Context, ms []*managed) error {
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
		e.px.RemoveBackend(m.id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if inst != nil {
				sctx, cancel := context.WithTimeout(ctx, m.app.StopTimeout.Duration+5*time.Second)
				errs[i] = inst.Stop(sctx)
				cancel()
			}
			e.unregister(m)
			if err := e.store.DeleteInstance(context.WithoutCancel(ctx), m.id); err != nil {
				e.markUnsaved("forget instance "+m.id, err)
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

// instancesOf returns the managed instances of one release, or of every
// release but one when not is true.
func (e *Engine) instancesOf(release string, not bool) []*managed {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*managed
	for _, m := range e.insts {
		if (m.release == release) != not {
			out = append(out, m)
		}
	}
	return out
}
