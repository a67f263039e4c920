package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Found is a process found by Find: a process group leader, with its
// start time (see ProcStartTime), working directory and environment.
type Found struct {
	PID       int
	StartTime uint64
	// Cwd is the link /proc/<pid>/cwd; the kernel appends " (deleted)"
	// when the directory was removed.
	Cwd string
	Env map[string]string
}

// execWait bounds how long Find and ProcEnv wait for a process caught in
// execve to finish it, so that its environment can be read (see
// procFS.environ). An exec takes well under a millisecond on an idle
// machine and tens of milliseconds on a loaded one; 5 s leaves room for a
// program read from a slow disk and still bounds a daemon's start.
const execWait = 5 * time.Second

// errInExec is the error of a process still in execve after execWait.
var errInExec = errors.New("still starting a program (execve): its environment is not written yet")

// Find scans /proc for live process group leaders whose environment has
// key set to value, as every instance of an app has (CUTOVER_APP): the
// way to find the instances a daemon started when nothing recorded them.
// Processes that cannot be read (gone meanwhile, another user's) are
// skipped. A process in the middle of execve (an instance is, while its
// shell execs the app) is waited for, up to execWait; one that is still
// there after it is left out, and the error names it, next to the
// processes found: a list, empty if need be, that is nil only when /proc
// could not be listed at all.
func Find(key, value string) ([]Found, error) { return hostProc.find(key, value) }

// ProcEnv returns the environment process pid was started with, from
// /proc/<pid>/environ: what an adopted instance was given. A process in
// the middle of execve is waited for, as by Find.
func ProcEnv(pid int) (map[string]string, error) {
	st, err := hostProc.stat(pid)
	var raw []byte
	if err == nil {
		raw, err = hostProc.environ(pid, st)
	}
	if err != nil {
		return nil, fmt.Errorf("read the environment of pid %d: %w", pid, err)
	}
	return parseEnviron(raw), nil
}

// procFS is how Find and ProcEnv read /proc: the host's (hostProc), or in
// tests a script that replays what the kernel shows of a process caught
// in execve, which a real process shows for too short a time to be
// caught at will.
type procFS struct {
	pids     func() ([]int, error)                      // the processes: numeric entries of /proc
	read     func(pid int, name string) ([]byte, error) // /proc/<pid>/<name>
	readlink func(pid int, name string) (string, error) // the link /proc/<pid>/<name>
	sleep    func(time.Duration)
}

var hostProc = procFS{
	pids: func() ([]int, error) {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return nil, err
		}
		var pids []int
		for _, ent := range ents {
			if pid, err := strconv.Atoi(ent.Name()); err == nil {
				pids = append(pids, pid)
			}
		}
		return pids, nil
	},
	read:     func(pid int, name string) ([]byte, error) { return os.ReadFile(procPath(pid, name)) },
	readlink: func(pid int, name string) (string, error) { return os.Readlink(procPath(pid, name)) },
	sleep:    time.Sleep,
}

func procPath(pid int, name string) string { return "/proc/" + strconv.Itoa(pid) + "/" + name }

// stat reads /proc/<pid>/stat. A process that does not exist gives an
// error wrapping ErrGone.
func (p procFS) stat(pid int) (procStat, error) {
	b, err := p.read(pid, "stat")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return procStat{}, fmt.Errorf("pid %d: %w", pid, ErrGone)
		}
		return procStat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return parseProcStat(pid, string(b))
}

func (p procFS) find(key, value string) ([]Found, error) {
	pids, err := p.pids()
	if err != nil {
		return nil, err
	}
	want := []byte(key + "=" + value)
	out := []Found{} // not nil: the scan ran (see Find)
	var stuck []error
	self := os.Getpid()
	for _, pid := range pids {
		if pid == self {
			continue
		}
		found, ok, err := p.inspect(pid, want)
		if err != nil {
			stuck = append(stuck, err)
		}
		if ok {
			out = append(out, found)
		}
	}
	if len(stuck) > 0 {
		return out, stuckErrors(stuck)
	}
	return out, nil
}

// stuckErrors are the errors of the processes a scan could not check, as
// one line ("pid 700: …; pid 701: …"): `cutover status` shows it on one.
type stuckErrors []error

func (e stuckErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e stuckErrors) Unwrap() []error { return e }

// inspect reads process pid and reports whether it is a live group leader
// whose environment has want. The error is errInExec's, for a process
// that could not be checked; any other failure to read (gone, another
// user's) is a process that is not wanted.
//
// Its stat is read before and after its environment, and both must be of
// the same process (same start time): otherwise the environment read could
// be that of a process that has just exited, and the group leader that
// took its pid would be stopped for another process's environment.
func (p procFS) inspect(pid int, want []byte) (Found, bool, error) {
	for range 3 { // the pid was reused while it was read: read the new process
		st, err := p.stat(pid)
		if err != nil || st.pgrp != pid || exited(st) {
			return Found{}, false, nil // gone, or not a leader: children of an instance share its environment
		}
		raw, err := p.environ(pid, st)
		switch {
		case errors.Is(err, errInExec):
			return Found{}, false, fmt.Errorf("pid %d: %w", pid, err)
		case errors.Is(err, ErrGone):
			continue // exited, maybe replaced: the next round's stat tells
		}
		if err != nil || !hasEntry(raw, want) {
			return Found{}, false, nil
		}
		cwd, _ := p.readlink(pid, "cwd") //nolint:errcheck // "" when unreadable: the caller matches on the environment
		after, err := p.stat(pid)
		switch {
		case err != nil || exited(after):
			return Found{}, false, nil
		case after.startTime != st.startTime:
			continue
		case after.pgrp != pid:
			return Found{}, false, nil
		}
		return Found{PID: pid, StartTime: st.startTime, Cwd: cwd, Env: parseEnviron(raw)}, true, nil
	}
	return Found{}, false, nil
}

func exited(st procStat) bool { return st.state == 'Z' || st.state == 'X' }

// environ reads /proc/<pid>/environ of the process st describes (its
// stat, read just before). An empty read is not taken for an empty
// environment while the kernel may not have shown the real one: environ
// reads empty while a process is in execve between taking its new memory
// and writing the new program's environment into it (its stat then shows
// the environment's end, field 51, as 0), and when the file was opened
// just before an execve that has since released the old memory. An
// instance is in execve while its `/bin/sh -c` execs the app, and the
// scan at a daemon's start caught one there on a busy machine: it read
// nothing, skipped the process, and left an instance nothing recorded
// running. So it reads again, after a short wait, until the environment
// is written, up to execWait; then the error wraps errInExec. A process
// whose environment is empty indeed (start equals end) or that exits
// meanwhile is not waited for; nor is any on a kernel whose stat does not
// show the bounds (before Linux 3.5).
func (p procFS) environ(pid int, st procStat) ([]byte, error) {
	wait := time.Millisecond
	for waited := time.Duration(0); ; {
		raw, err := p.read(pid, "environ")
		if err != nil || len(raw) > 0 {
			return raw, err
		}
		now, err := p.stat(pid)
		switch {
		case err != nil:
			return nil, err
		case exited(now) || now.startTime != st.startTime:
			return nil, fmt.Errorf("pid %d: %w", pid, ErrGone)
		case !now.hasEnv || (now.envEnd != 0 && now.envStart == now.envEnd):
			return raw, nil
		case waited >= execWait:
			return nil, fmt.Errorf("%w (waited %v)", errInExec, execWait)
		}
		p.sleep(wait)
		waited += wait
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func hasEntry(environ, entry []byte) bool {
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if bytes.Equal(kv, entry) {
			return true
		}
	}
	return false
}

// parseEnviron splits the NUL-separated KEY=value entries of an environ
// file.
func parseEnviron(raw []byte) map[string]string {
	env := map[string]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := bytes.Cut(kv, []byte{'='}); ok {
			env[string(k)] = string(v)
		}
	}
	return env
}
