package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times. It is 100 on
// every Linux architecture Go supports; reading it would need sysconf, which
// needs cgo.
const clockTicks = 100

// procStat is what the supervisor needs from /proc/<pid>/stat.
type procStat struct {
	state     byte   // field 3: R, S, D, Z, X, …
	pgrp      int    // field 5: process group id
	startTime uint64 // field 22: start time, clock ticks since boot
	// envStart and envEnd (fields 50 and 51, Linux 3.5 and later, 0 for
	// a kernel thread) bound the environment in the process's memory,
	// what /proc/<pid>/environ shows. envEnd is 0 while the process is
	// in execve between taking its new memory and writing the new
	// program's environment into it: environ reads empty then (see
	// procFS.environ). hasEnv is false when the kernel does not show them.
	envStart, envEnd uint64
	hasEnv           bool
}

// readProcStat reads /proc/<pid>/stat. A process that does not exist gives
// an error wrapping ErrGone.
func readProcStat(pid int) (procStat, error) { return hostProc.stat(pid) }

// parseProcStat parses the text of /proc/<pid>/stat. The command name
// (field 2) is in parentheses and may itself contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseProcStat(pid int, s string) (procStat, error) {
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("parse stat of pid %d: no command name", pid)
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3, so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse stat of pid %d: %d fields after the command name, want at least 20", pid, len(f))
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("parse stat of pid %d: process group: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse stat of pid %d: start time: %w", pid, err)
	}
	st := procStat{state: f[0][0], pgrp: pgrp, startTime: start}
	if len(f) >= 49 {
		envStart, err1 := strconv.ParseUint(f[47], 10, 64)
		envEnd, err2 := strconv.ParseUint(f[48], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return procStat{}, fmt.Errorf("parse stat of pid %d: environment bounds: %w", pid, err)
		}
		st.envStart, st.envEnd, st.hasEnv = envStart, envEnd, true
	}
	return st, nil
}

// ProcStartTime returns the start time of process pid: field 22 of
// /proc/<pid>/stat, in clock ticks since boot. Together with the pid it
// identifies a process for good, since a recycled pid gets a later start
// time. The error wraps ErrGone when there is no process pid. A zombie still
// has its start time; Adopt and KillGroup treat it as gone.
func ProcStartTime(pid int) (uint64, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, fmt.Errorf("start time of pid %d: %w", pid, err)
	}
	return st.startTime, nil
}

// Alive reports whether pid is still the live process that started at
// startTime, leading its own process group (as an instance does): not
// gone, not a zombie, not a recycled pid. A zombie keeps its start time,
// so ProcStartTime alone cannot tell it from a live process.
func Alive(pid int, startTime uint64) bool { return identify(pid, startTime) == nil }

// identify checks that pid is still the live process that started at
// startTime and that it leads its own process group, as every instance
// does. Otherwise the error wraps ErrGone.
func identify(pid int, startTime uint64) error {
	st, err := readProcStat(pid)
	if err != nil {
		return err
	}
	switch {
	case st.state == 'Z' || st.state == 'X':
		return fmt.Errorf("pid %d has exited: %w", pid, ErrGone)
	case st.startTime != startTime:
		return fmt.Errorf("pid %d started at tick %d, not %d (the pid was reused): %w", pid, st.startTime, startTime, ErrGone)
	case st.pgrp != pid:
		return fmt.Errorf("pid %d is in process group %d, not its own: %w", pid, st.pgrp, ErrGone)
	}
	return nil
}

// startedAt converts a start time in clock ticks since boot into wall-clock
// time. It returns now if the boot time cannot be read: the value is only
// shown to people.
func startedAt(startTime uint64, now time.Time) time.Time {
	boot, err := bootTime()
	if err != nil {
		return now
	}
	return boot.Add(time.Duration(startTime) * time.Second / clockTicks)
}

// bootTime reads the btime line of /proc/stat.
func bootTime() (time.Time, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return time.Time{}, fmt.Errorf("read boot time: %w", err)
	}
	defer f.Close() // read-only: a close error changes nothing
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("read boot time: %w", err)
			}
			return time.Unix(sec, 0), nil
		}
	}
	if err := sc.Err(); err != nil {
		return time.Time{}, fmt.Errorf("read boot time: %w", err)
	}
	return time.Time{}, errors.New("read boot time: no btime line in /proc/stat")
}
