package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec says how to run one instance.
type Spec struct {
	// App, Release and Instance name the instance in logs and status.
	// Instance is required and unique within a Supervisor, e.g.
	// "20261122T0935-ab12-1".
	App, Release, Instance string

	// Dir is the release directory, the instance's working directory.
	// Required.
	Dir string
	// Command is run by `/bin/sh -c` as written, its last simple command
	// exec'd so the app replaces the shell (see shellScript). Required.
	Command string
	// Env is the instance's whole environment, as "KEY=value"; PORT is
	// added (and wins over a PORT here), and $PORT or ${PORT} in a value
	// is replaced by the instance's port.
	Env []string
	// Port is the loopback port the instance listens on, given to it as
	// $PORT. 0 picks a free one at Start (required for Adopt).
	Port int

	// StopSignal asks the instance to stop. Default SIGTERM.
	StopSignal syscall.Signal
	// StopTimeout is how long the instance has to exit after StopSignal
	// before its process group is killed. Default 10s.
	StopTimeout time.Duration

	// LogPath receives the instance's stdout and stderr, appended by its
	// log writer; its directory is created (0700) and the file is 0600.
	// Default: discard (/dev/null).
	LogPath string
	// LogMaxSize caps LogPath, in bytes: before a write that would take
	// it past the cap, the file is renamed to LogPath+".1" (replacing it)
	// and a new one is started. 0 means no cap.
	LogMaxSize int64

	// BootNice is added to the daemon's nice value for the instance's
	// process group from each start of a process until EndBoot: a booting
	// instance takes the CPU serving ones leave. 0, or a daemon that could
	// not undo it (PriorityRestorable), keeps the daemon's priority.
	BootNice int
}

// State is where an instance is in its life.
type State int

// The states of an instance.
const (
	// Starting: a process is being started (after a crash).
	Starting State = iota
	// Running: the process runs (started or adopted). Whether it serves
	// is for health checks to say.
	Running
	// Backoff: the process crashed; it is restarted after a delay.
	Backoff
	// Stopping: Stop signalled the process and waits for it to exit.
	Stopping
	// Stopped: the process is gone and will not be restarted.
	Stopped
)

// String returns the state's lower-case name, as shown and recorded.
func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Running:
		return "running"
	case Backoff:
		return "backoff"
	case Stopping:
		return "stopping"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is a snapshot of an instance.
type Status struct {
	Instance, Release string
	// PID and StartTime identify the current process; recorded, they let
	// a later daemon Adopt it. In Backoff, Starting and Stopped they are
	// those of the process that ended.
	PID       int
	StartTime uint64
	Port      int
	State     State
	// Restarts counts crashes (and kills by Restart) since Start, or since
	// the instance was first started when it was adopted (History); each
	// is followed by a restart unless the instance is stopped first.
	Restarts int
	// LastExit says how the last process ended ("exit status 1",
	// "signal: killed"); empty if none has.
	LastExit   string
	LastExitAt time.Time
	// StartedAt is when the current process started.
	StartedAt time.Time
	// Adopted is true while the current process is one taken over by
	// Adopt rather than started by this Supervisor.
	Adopted bool
}

// Instance is one supervised instance: a process and its successors after
// crashes. Its methods are safe for concurrent use.
type Instance struct {
	sup  *Supervisor
	spec Spec // prepared: defaults filled, port chosen; never changes
	log  *slog.Logger

	stopReq  chan struct{} // closed by Stop
	stopOnce sync.Once
	done     chan struct{} // closed when run returns

	mu     sync.Mutex
	status Status
	proc   *process // the current process; nil while none runs
}

func newInstance(s *Supervisor, spec Spec) *Instance {
	return &Instance{
		sup:     s,
		spec:    spec,
		log:     s.log.With("app", spec.App, "release", spec.Release, "instance", spec.Instance),
		stopReq: make(chan struct{}),
		done:    make(chan struct{}),
		status: Status{
			Instance: spec.Instance,
			Release:  spec.Release,
			Port:     spec.Port,
			State:    Starting,
		},
	}
}

// Spec returns the instance's spec with its defaults filled and its port
// chosen.
func (i *Instance) Spec() Spec {
	spec := i.spec
	spec.Env = append([]string(nil), i.spec.Env...)
	return spec
}

// Status returns the instance's current status.
func (i *Instance) Status() Status {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.status
}

// Stop stops the instance for good: StopSignal to its process group, up
// to StopTimeout for it to exit, then SIGKILL to the group. It returns once
// the process is gone. If ctx ends first, the group is killed at once and
// Stop returns ctx's error without waiting further. Stopping a stopped
// instance does nothing; after Detach, Stop returns ErrDetached.
func (i *Instance) Stop(ctx context.Context) error {
	i.stopOnce.Do(func() { close(i.stopReq) })
	select {
	case <-i.done:
	default:
		select {
		case <-i.done:
		case <-ctx.Done():
			i.Kill()
			return fmt.Errorf("stop instance %s: %w", i.spec.Instance, ctx.Err())
		}
	}
	if i.Status().State != Stopped {
		return fmt.Errorf("stop instance %s: %w", i.spec.Instance, ErrDetached)
	}
	return nil
}

// Kill sends SIGKILL to the instance's process group now. Supervision goes
// on: like any crash, the instance is restarted, unless Stop was called.
// (Stop with a context that is already done is the way to end an instance
// at once.)
func (i *Instance) Kill() {
	i.mu.Lock()
	p := i.proc
	i.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.exited:
		return // its group was swept already; its pid may be reused
	default:
	}
	if err := signalGroup(p.pid, syscall.SIGKILL); err != nil {
		i.log.Warn("kill instance", "pid", p.pid, "err", err)
	}
}

// Restart kills the instance's current process group at once (SIGKILL,
// as Kill) and records reason, e.g. "hung: 10 health checks failed", as
// how the process ended in Status.LastExit, where a kill would show
// "signal: killed". It counts as a restart (Status.Restarts) and is
// followed by one after the crash backoff, like any crash: a SIGKILL ends
// a process that is stopped (SIGSTOP) or stuck as surely as a running
// one. It returns false, doing nothing, when no process runs (backoff,
// stopping, stopped) or after Stop.
func (i *Instance) Restart(reason string) bool {
	select {
	case <-i.stopReq:
		return false
	default:
	}
	i.mu.Lock()
	p := i.proc
	if p == nil || i.status.State != Running {
		i.mu.Unlock()
		return false
	}
	select {
	case <-p.exited:
		i.mu.Unlock()
		return false // its group was swept already; its pid may be reused
	default:
	}
	p.killedFor = reason
	i.mu.Unlock()
	i.log.Warn("killing instance to restart it", "pid", p.pid, "reason", reason)
	if err := signalGroup(p.pid, syscall.SIGKILL); err != nil {
		i.log.Warn("kill instance", "pid", p.pid, "err", err)
		return false
	}
	return true
}

// exitOf says how p, which has exited, ended: the reason Restart gave
// when it was Restart's SIGKILL that ended it, else p.exit.
func (i *Instance) exitOf(p *process) string {
	i.mu.Lock()
	reason := p.killedFor
	i.mu.Unlock()
	if reason != "" && (p.exit == "signal: killed" || p.adopted) {
		return reason
	}
	return p.exit
}

// run supervises the instance, starting with process p, until Stop or
// Detach. It is the only caller of OnChange for this instance.
func (i *Instance) run(p *process) {
	s := i.sup
	defer s.loops.Done()
	defer close(i.done)
	i.notify()
	var backoff time.Duration
	for {
		if p != nil {
			select {
			case <-p.exited:
			case <-i.stopReq:
				i.stopProcess(p)
				return
			case <-s.detached:
				p.unwatch()
				return
			}
			backoff = nextBackoff(backoff, time.Since(p.startedAt), s.opts)
			i.crashed(i.exitOf(p), backoff)
		}

		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-i.stopReq:
			t.Stop()
			i.setState(Stopped)
			s.remove(i)
			i.log.Info("instance stopped during backoff")
			i.notify()
			return
		case <-s.detached:
			t.Stop()
			return
		}

		i.setState(Starting)
		i.notify()
		np, err := s.spawn(i.spec)
		if err != nil {
			p = nil
			backoff = nextBackoff(backoff, 0, s.opts)
			i.crashed(err.Error(), backoff)
			continue
		}
		p = np
		i.setRunning(p)
		i.log.Info("instance restarted", "pid", p.pid)
		i.notify()
	}
}

// stopProcess stops p as Stop describes and records the instance Stopped.
func (i *Instance) stopProcess(p *process) {
	i.setState(Stopping)
	i.notify()
	i.log.Info("stopping instance", "pid", p.pid, "signal", i.spec.StopSignal)
	if err := signalGroup(p.pid, i.spec.StopSignal); err != nil {
		i.log.Warn("signal instance", "pid", p.pid, "err", err)
	}
	t := time.NewTimer(i.spec.StopTimeout)
	select {
	case <-p.exited:
		t.Stop()
	case <-t.C:
		i.log.Warn("instance did not stop in time; killing its process group", "pid", p.pid, "timeout", i.spec.StopTimeout)
		if err := signalGroup(p.pid, syscall.SIGKILL); err != nil {
			i.log.Warn("kill instance", "pid", p.pid, "err", err)
		}
		<-p.exited
	}
	i.mu.Lock()
	i.proc = nil
	i.status.State = Stopped
	i.status.LastExit = p.exit
	i.status.LastExitAt = time.Now()
	i.mu.Unlock()
	i.sup.remove(i)
	i.log.Info("instance stopped", "pid", p.pid, "exit", p.exit)
	i.notify()
}

// crashed records an unexpected end of the instance's process (or a
// failure to start one) and the wait before the next start.
func (i *Instance) crashed(exit string, backoff time.Duration) {
	i.mu.Lock()
	i.proc = nil
	i.status.State = Backoff
	i.status.Restarts++
	i.status.LastExit = exit
	i.status.LastExitAt = time.Now()
	pid := i.status.PID
	i.mu.Unlock()
	i.log.Warn("instance crashed; restarting", "pid", pid, "exit", exit, "backoff", backoff)
	i.notify()
}

// EndBoot gives the instance's current process group back the daemon's
// priority, if it was lowered for its boot (Spec.BootNice). Call it when
// the instance is healthy, before it gets traffic; later calls, and calls
// for an instance not booting, do nothing.
func (i *Instance) EndBoot() {
	i.mu.Lock()
	defer i.mu.Unlock()
	p := i.proc
	if p == nil || !p.booting {
		return
	}
	p.booting = false
	if err := setGroupNice(p.pid, p.baseNice); err != nil && !errors.Is(err, unix.ESRCH) {
		i.log.Warn("restore the priority of a booted instance", "pid", p.pid, "err", err)
	}
}

// setRunning records p as the instance's current, running process.
func (i *Instance) setRunning(p *process) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.proc = p
	i.status.State = Running
	i.status.PID = p.pid
	i.status.StartTime = p.startTime
	i.status.StartedAt = p.startedAt
	i.status.Adopted = p.adopted
}

func (i *Instance) setState(st State) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.status.State = st
}

// notify hands the current status to Options.OnChange, outside any lock.
func (i *Instance) notify() {
	if i.sup.opts.OnChange != nil {
		i.sup.opts.OnChange(i.Status())
	}
}

// nextBackoff returns the wait before restarting an instance whose process
// ran for ran and whose previous wait was prev (0 for none): BackoffMin
// after a run of at least BackoffReset or for a first crash, else twice
// prev, at most BackoffMax.
func nextBackoff(prev, ran time.Duration, opts Options) time.Duration {
	if prev <= 0 || ran >= opts.BackoffReset {
		return opts.BackoffMin
	}
	return min(2*prev, opts.BackoffMax)
}
