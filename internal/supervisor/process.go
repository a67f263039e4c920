package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// adoptedExit is Status.LastExit for an adopted process: it is not our
// child, so its exit status cannot be read.
const adoptedExit = "exited (status unknown: adopted process)"

// osCalls are the operating-system calls that tests replace to exercise
// fallbacks the test machine does not need.
type osCalls struct {
	// pidfdOpen is unix.PidfdOpen.
	pidfdOpen func(pid, flags int) (int, error)
	// procPollInterval is how often /proc is read to learn that an adopted
	// process exited when pidfd is unavailable.
	procPollInterval time.Duration
}

var defaultOS = osCalls{pidfdOpen: unix.PidfdOpen, procPollInterval: 200 * time.Millisecond}

// process is one OS process of an instance, started here or adopted.
type process struct {
	pid       int
	startTime uint64
	startedAt time.Time
	adopted   bool

	// booting is set while the process group runs at the lowered boot
	// priority, baseNice the daemon's nice value to go back to. Guarded
	// by the Instance's mu once the process is its current one.
	booting  bool
	baseNice int

	// killedFor is why the Instance killed the process on purpose
	// (Instance.Restart), "" if it did not. Guarded by the Instance's mu.
	killedFor string

	// exited is closed once the process has exited and its process group
	// was swept. exit says how it ended; it is written before exited is
	// closed and read only after.
	exited chan struct{}
	exit   string

	// unwatch ends the exit watcher of an adopted process early (on
	// Detach) and waits for it. It is a no-op for children, whose reaper
	// must run until they exit so that they do not linger as zombies.
	unwatch func()
}

// signalGroup sends sig to the process group led by pid. A group that no
// longer exists is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 1 {
		// kill(-1) or kill(0) would hit far more than one instance.
		return fmt.Errorf("signal process group %d: not an instance's group", pid)
	}
	if err := unix.Kill(-pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal process group %d with %v: %w", pid, sig, err)
	}
	return nil
}

// spawn starts one process for spec, which must be prepared (port chosen,
// defaults filled). A goroutine waits for the process; it ends when the
// process exits, not before (see Supervisor.loops).
func (s *Supervisor) spawn(spec Spec) (*process, error) {
	logf, logWritten, err := s.openOutput(spec)
	if err != nil {
		return nil, err
	}
	// The child gets its own copy of the descriptor; ours is not needed
	// after Start, and must go, or the log writer would never see the end
	// of the output.
	defer logf.Close()

	cmd := exec.Command("/bin/sh", "-c", shellScript(spec.Command))
	cmd.Dir = spec.Dir
	cmd.Env = make([]string, 0, len(spec.Env)+1)
	cmd.Env = append(cmd.Env, expandPort(spec.Env, spec.Port)...)
	cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(spec.Port)) // last wins over a PORT in spec.Env
	cmd.Stdout, cmd.Stderr = logf, logf                        // *os.File: passed as fds 1 and 2, no copying goroutine
	// Setpgid: the instance leads its own group, so that the group can be
	// killed as a whole and terminal signals to the daemon do not reach it.
	// No Pdeathsig: the instance must outlive the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %q in %s: %w", spec.Command, spec.Dir, err)
	}
	pid := cmd.Process.Pid
	startTime, err := ProcStartTime(pid)
	if err != nil {
		// Cannot happen while the child is unreaped; do not leave it behind.
		if kerr := signalGroup(pid, syscall.SIGKILL); kerr != nil {
			err = errors.Join(err, kerr)
		}
		_ = cmd.Wait() // reaping only: the instance failed to start anyway
		return nil, fmt.Errorf("run %q: %w", spec.Command, err)
	}
	p := &process{
		pid:       pid,
		startTime: startTime,
		startedAt: time.Now(),
		exited:    make(chan struct{}),
		unwatch:   func() {},
	}
	s.lowerForBoot(p, spec)
	go func() {
		p.exit = reapChild(cmd, s.log)
		// The group is gone: the log writer has the last of its output
		// to write. An exit is known once that is in the log (a boot
		// failure shows the log's tail), unless a process that left the
		// group keeps the pipe open.
		select {
		case <-logWritten:
		case <-time.After(logDrainTimeout):
		}
		close(p.exited)
	}()
	return p, nil
}

// lowerForBoot sets the new process's group to the boot priority of spec,
// when it has one and it can be undone (PriorityRestorable). The process
// may already have started threads or children: the whole group is set.
// A failure is logged; the instance then boots at the daemon's priority.
func (s *Supervisor) lowerForBoot(p *process, spec Spec) {
	if spec.BootNice <= 0 || !PriorityRestorable() {
		return
	}
	base, err := ThreadNice(0) // the daemon's: its threads share one
	if err != nil {
		return
	}
	boot := min(base+spec.BootNice, maxNice)
	if boot <= base {
		return
	}
	if err := setGroupNice(p.pid, boot); err != nil {
		s.log.Warn("lower the priority of a booting instance", "instance", spec.Instance, "pid", p.pid, "err", err)
		return
	}
	p.booting, p.baseNice = true, base
}

// reapChild waits for a child to exit, kills the rest of its process group,
// reaps it and says how it ended ("exit status 1", "signal: killed").
func reapChild(cmd *exec.Cmd, log *slog.Logger) string {
	pid := cmd.Process.Pid
	var info unix.Siginfo
	for {
		// WNOWAIT leaves the child a zombie: its pid, which is also the
		// group id, stays reserved until Wait below, so the group kill
		// cannot reach a group that reused the number.
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				log.Warn("wait for instance process", "pid", pid, "err", err)
			}
			break
		}
	}
	if err := signalGroup(pid, syscall.SIGKILL); err != nil {
		log.Warn("kill the rest of the process group", "pid", pid, "err", err)
	}
	err := cmd.Wait()
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Error()
	}
	return "wait: " + err.Error()
}

// watchAdopted starts watching an adopted process, which is not our child:
// through a pidfd when the kernel has them, else by polling /proc. It
// returns ErrGone if the process is not pid/startTime (any more).
func (s *Supervisor) watchAdopted(pid int, startTime uint64) (*process, error) {
	p := &process{
		pid:       pid,
		startTime: startTime,
		adopted:   true,
		exited:    make(chan struct{}),
	}
	fd, err := s.os.pidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	// The pidfd is opened before the identity check: if the check then
	// finds the process that started at startTime, the pidfd refers to it,
	// since that process already held the pid when the pidfd was opened.
	if ierr := identify(pid, startTime); ierr != nil {
		if err == nil {
			_ = unix.Close(fd) // never used
		}
		return nil, ierr
	}
	p.startedAt = startedAt(startTime, time.Now())
	if err != nil {
		s.log.Info("pidfd unavailable; polling /proc for the exit of adopted processes", "pid", pid, "err", err)
		s.pollProc(p)
		return p, nil
	}
	if err := s.pollPidfd(p, fd); err != nil {
		_ = unix.Close(fd) // never used
		return nil, err
	}
	return p, nil
}

// pollPidfd starts a goroutine that waits for fd, a pidfd of p, to become
// readable, which happens when p exits. p.unwatch wakes it through a pipe.
func (s *Supervisor) pollPidfd(p *process, fd int) error {
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("watch pid %d: create wake-up pipe: %w", p.pid, err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer unix.Close(fd)      // read-only descriptors: close errors
		defer unix.Close(wake[0]) // change nothing
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(wake[0]), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				// Should not happen; fall back to /proc rather than lose the process.
				s.log.Warn("poll pidfd; polling /proc instead", "pid", p.pid, "err", err)
				s.waitProc(p, stop)
				return
			}
			if fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents != 0 {
				s.adoptedExited(p)
				return
			}
		}
	}()
	var once sync.Once
	p.unwatch = func() {
		once.Do(func() {
			close(stop)
			select {
			case <-done: // the process exited; nobody to wake
			default:
				// EPIPE if the watcher returned meanwhile; Go ignores the
				// SIGPIPE for descriptors other than 1 and 2.
				_, _ = unix.Write(wake[1], []byte{0})
			}
			<-done
			_ = unix.Close(wake[1]) // write end: nothing left to flush
		})
	}
	return nil
}

// pollProc starts a goroutine that reads /proc until p is gone.
func (s *Supervisor) pollProc(p *process) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.waitProc(p, stop)
	}()
	var once sync.Once
	p.unwatch = func() {
		once.Do(func() {
			close(stop)
			<-done
		})
	}
}

// waitProc reads /proc every s.os.procPollInterval until p is gone or stop
// is closed.
func (s *Supervisor) waitProc(p *process, stop <-chan struct{}) {
	t := time.NewTicker(s.os.procPollInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := identify(p.pid, p.startTime); errors.Is(err, ErrGone) {
				s.adoptedExited(p)
				return
			}
		}
	}
}

// adoptedExited sweeps the group of an adopted process that exited and
// closes p.exited.
func (s *Supervisor) adoptedExited(p *process) {
	if err := signalGroup(p.pid, syscall.SIGKILL); err != nil {
		s.log.Warn("kill the rest of the process group", "pid", p.pid, "err", err)
	}
	p.exit = adoptedExit
	close(p.exited)
}

// KillGroup ends a process group recorded by an earlier daemon and not
// adopted (orphan clean-up at daemon start): it sends SIGTERM to the group,
// waits up to timeout for its leader pid to exit, then sends SIGKILL to the
// group and waits up to timeout again. It acts only if pid and startTime
// still identify the same process, leading its own group; otherwise it
// returns an error wrapping ErrGone and signals nothing. A group whose
// leader is already gone cannot be identified and is left alone.
func KillGroup(pid int, startTime uint64, timeout time.Duration) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", pid, ErrGone)
	}
	if err == nil {
		defer unix.Close(fd) // read-only descriptor
	} else {
		fd = -1 // no pidfd on this kernel: poll /proc
	}
	if err := identify(pid, startTime); err != nil {
		return fmt.Errorf("kill process group %d: %w", pid, err)
	}
	if err := signalGroup(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("kill process group %d: %w", pid, err)
	}
	if waitGone(pid, startTime, fd, timeout) {
		// The leader is gone; its group may not be.
		if err := signalGroup(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill process group %d: %w", pid, err)
		}
		return nil
	}
	if err := signalGroup(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill process group %d: %w", pid, err)
	}
	if !waitGone(pid, startTime, fd, timeout) {
		return fmt.Errorf("kill process group %d: leader still alive %v after SIGKILL", pid, timeout)
	}
	return nil
}

// Groups stops process groups that no Supervisor started (the commands of
// a deploy a previous daemon left running), for callers that take it as an
// interface: ProcStartTime and KillGroup, with a group whose leader is gone
// or is another process no error.
type Groups struct{}

// StartTime is ProcStartTime.
func (Groups) StartTime(pid int) (uint64, error) { return ProcStartTime(pid) }

// KillGroup is the package's KillGroup; an error wrapping ErrGone is
// none: there is nothing of the group to stop.
func (Groups) KillGroup(pgid int, start uint64, timeout time.Duration) error {
	if err := KillGroup(pgid, start, timeout); err != nil && !errors.Is(err, ErrGone) {
		return err
	}
	return nil
}

// waitGone waits up to timeout for the process pid/startTime to exit,
// through pidfd fd, or by reading /proc when fd is -1. It reports whether
// the process is gone.
func waitGone(pid int, startTime uint64, fd int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	if fd >= 0 {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			left := time.Until(deadline)
			if left < 0 {
				left = 0
			}
			n, err := unix.Poll(fds, int(left.Milliseconds()))
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err == nil && n > 0
		}
	}
	t := time.NewTicker(defaultOS.procPollInterval / 10)
	defer t.Stop()
	for {
		if errors.Is(identify(pid, startTime), ErrGone) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
}
