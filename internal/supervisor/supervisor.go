package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/freeport"
)

// ErrGone means a recorded process is not the same process any more: it
// exited, or its pid now belongs to another process, or it left its process
// group.
var ErrGone = errors.New("process is gone")

// ErrDetached is returned by a Supervisor, or by an Instance, after Detach.
var ErrDetached = errors.New("supervisor detached")

// Options configures a Supervisor. The zero value is usable.
type Options struct {
	// BackoffMin is the wait before the first restart after a crash.
	// Default 100ms.
	BackoffMin time.Duration
	// BackoffMax caps the wait between restarts, which doubles with each
	// crash in a row. Default 10s.
	BackoffMax time.Duration
	// BackoffReset is how long an instance must have run for its crash to
	// count as the first in a row again. Default 10s.
	BackoffReset time.Duration

	// OnChange, if set, is called with the new status on every change of
	// state or pid: start, crash, restart, stop. It is called from the
	// instance's own goroutine, one call at a time per instance and never
	// under a lock, so it may call Status and Spec; it must not block for
	// long, and must not call Stop of the same instance or Detach (both
	// wait for that goroutine).
	OnChange func(Status)

	// Logger receives the supervisor's logs. Default: discard.
	Logger *slog.Logger
}

// Supervisor starts, adopts, restarts and stops instances. Its methods are
// safe for concurrent use.
type Supervisor struct {
	opts Options
	log  *slog.Logger
	os   osCalls

	detached   chan struct{} // closed by Detach
	detachOnce sync.Once

	// loops counts the instances' run goroutines. The goroutines that
	// wait for started children are not counted: each ends when its child
	// exits, and must outlive Detach, or an exited child would stay a
	// zombie for as long as this process lives.
	loops sync.WaitGroup

	mu        sync.Mutex
	instances map[string]*Instance // by Spec.Instance; stopped ones are removed
}

// New returns a Supervisor with opts, defaults filled.
func New(opts Options) *Supervisor {
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 10 * time.Second
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = opts.BackoffMin
	}
	if opts.BackoffReset <= 0 {
		opts.BackoffReset = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{
		opts:      opts,
		log:       log.With("component", "supervisor"),
		os:        defaultOS,
		detached:  make(chan struct{}),
		instances: make(map[string]*Instance),
	}
}

// Start starts a new instance for spec and supervises it. If spec.Port is
// 0 a free loopback port is chosen below the kernel's ephemeral range (see
// package freeport), which the instance keeps across restarts (see
// Instance.Spec). Another process that listens may take it before the
// instance does; the instance then fails to start and is restarted, so the
// window is only a risk of a slower boot.
func (s *Supervisor) Start(spec Spec) (*Instance, error) {
	spec, err := prepare(spec)
	if err != nil {
		return nil, fmt.Errorf("start instance %s: %w", spec.Instance, err)
	}
	if spec.Port == 0 {
		if spec.Port, err = freeport.Pick(); err != nil {
			return nil, fmt.Errorf("start instance %s: %w", spec.Instance, err)
		}
	}
	i, err := s.reserve(spec)
	if err != nil {
		return nil, fmt.Errorf("start instance %s: %w", spec.Instance, err)
	}
	p, err := s.spawn(spec)
	if err != nil {
		s.release(i)
		return nil, fmt.Errorf("start instance %s: %w", spec.Instance, err)
	}
	i.setRunning(p)
	i.log.Info("instance started", "pid", p.pid, "port", spec.Port)
	go i.run(p)
	return i, nil
}

// History is what an earlier daemon recorded of an instance besides its
// process: Adopt carries it over, so that `cutover status` counts the
// app's crashes, not the daemon's restarts.
type History struct {
	// Restarts counts the instance's crashes so far (Status.Restarts).
	Restarts int
	// LastExit says how its last process ended (Status.LastExit); when
	// that was is not recorded, so Status.LastExitAt stays zero.
	LastExit string
}

// Adopt takes over an instance that an earlier daemon started, identified
// by pid and startTime (see ProcStartTime); spec is what it was started
// with, and spec.Port must be its port; past is what was recorded of it,
// from which its Status continues. It returns an error wrapping ErrGone if
// pid is not that process any more; the caller then starts a new instance.
// The adopted process is not restarted by Adopt; it is if it crashes later.
func (s *Supervisor) Adopt(spec Spec, pid int, startTime uint64, past History) (*Instance, error) {
	// The process runs whether or not its directory still exists (a
	// deleted releases/): adopt it; only a restart would need the directory.
	spec, err := prepareSpec(spec, false)
	if err != nil {
		return nil, fmt.Errorf("adopt instance %s: %w", spec.Instance, err)
	}
	if spec.Port == 0 {
		return nil, fmt.Errorf("adopt instance %s: the spec has no port; give the port the instance listens on", spec.Instance)
	}
	i, err := s.reserve(spec)
	if err != nil {
		return nil, fmt.Errorf("adopt instance %s: %w", spec.Instance, err)
	}
	p, err := s.watchAdopted(pid, startTime)
	if err != nil {
		s.release(i)
		return nil, fmt.Errorf("adopt instance %s: %w", spec.Instance, err)
	}
	i.mu.Lock()
	i.status.Restarts, i.status.LastExit = past.Restarts, past.LastExit
	i.mu.Unlock()
	i.setRunning(p)
	i.log.Info("instance adopted", "pid", pid, "port", spec.Port, "restarts", past.Restarts)
	go i.run(p)
	return i, nil
}

// reserve registers a new instance for spec, so that a second one with the
// same id is refused, and counts its run goroutine in s.loops.
func (s *Supervisor) reserve(spec Spec) (*Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.detached:
		return nil, ErrDetached
	default:
	}
	if _, ok := s.instances[spec.Instance]; ok {
		return nil, errors.New("an instance with this id is already supervised")
	}
	i := newInstance(s, spec)
	s.instances[spec.Instance] = i
	s.loops.Add(1)
	return i, nil
}

// release undoes reserve for an instance whose run goroutine never started.
func (s *Supervisor) release(i *Instance) {
	s.remove(i)
	close(i.done)
	s.loops.Done()
}

// remove forgets i, if it is still the instance registered under its id.
func (s *Supervisor) remove(i *Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.instances[i.spec.Instance] == i {
		delete(s.instances, i.spec.Instance)
	}
}

// Instances returns the supervised instances, sorted by id. A stopped
// instance is no longer listed. After Detach the list is what it was then.
func (s *Supervisor) Instances() []*Instance {
	s.mu.Lock()
	out := make([]*Instance, 0, len(s.instances))
	for _, i := range s.instances {
		out = append(out, i)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *Instance) int { return strings.Compare(a.spec.Instance, b.spec.Instance) })
	return out
}

// Detach stops monitoring every instance WITHOUT stopping them: the daemon
// is exiting so that a new daemon re-adopts them. After Detach nothing is
// restarted, Start and Adopt fail with ErrDetached, and Stop returns
// ErrDetached. Detach returns once every instance goroutine has ended,
// except the waiters of started children, which end when their child exits
// (so that it is reaped rather than left a zombie while this process lives).
func (s *Supervisor) Detach() {
	s.detachOnce.Do(func() {
		s.mu.Lock()
		close(s.detached)
		n := len(s.instances)
		s.mu.Unlock()
		s.loops.Wait()
		if n == 0 {
			s.log.Info("detached; no instance was running")
		} else {
			s.log.Info("detached; instances keep running", "instances", n)
		}
	})
}

// prepare validates spec and fills its defaults; it does not choose a port.
func prepare(spec Spec) (Spec, error) { return prepareSpec(spec, true) }

// prepareSpec is prepare; needDir false accepts a directory that is gone.
func prepareSpec(spec Spec, needDir bool) (Spec, error) {
	switch {
	case spec.Instance == "":
		return spec, errors.New("the spec has no instance id")
	case strings.TrimSpace(spec.Command) == "":
		return spec, errors.New("the spec has no command")
	case spec.Dir == "":
		return spec, errors.New("the spec has no directory")
	case spec.Port < 0 || spec.Port > 65535:
		return spec, fmt.Errorf("port %d is out of range", spec.Port)
	}
	switch fi, err := os.Stat(spec.Dir); {
	case err != nil && !needDir && errors.Is(err, os.ErrNotExist):
	case err != nil:
		return spec, fmt.Errorf("release directory: %w", err)
	case !fi.IsDir():
		return spec, fmt.Errorf("release directory %s is not a directory", spec.Dir)
	}
	if spec.StopSignal == 0 {
		spec.StopSignal = syscall.SIGTERM
	}
	if spec.StopTimeout <= 0 {
		spec.StopTimeout = 10 * time.Second
	}
	if spec.LogPath == "" {
		spec.LogPath = os.DevNull
	}
	spec.Env = slices.Clone(spec.Env)
	return spec, nil
}
