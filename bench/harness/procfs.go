package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTime returns the CPU time (user + system, all threads, live and
// exited) the processes pids have used so far.
func cpuTime(pids []int) (time.Duration, error) {
	var ticks uint64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
		}
		t, err := parseStatTicks(string(b))
		if err != nil {
			return 0, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// parseStatTicks returns utime+stime from the text of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields
// are counted from the last ')'.
func parseStatTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat line %q", stat)
	}
	// After ')' come field 3 (state) onwards; utime is field 14, stime 15.
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat line has %d fields after the command, want at least 13", len(f))
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime %q: %w", f[11], err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime %q: %w", f[12], err)
	}
	return utime + stime, nil
}

// cpuSteal returns, from the first line of /proc/stat, the time the
// hypervisor ran something else while this machine's CPUs wanted to run
// (steal) and the time of all states summed, in clock ticks.
func cpuSteal() (steal, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseCPUSteal(string(b))
}

// parseCPUSteal reads steal and the total from the text of /proc/stat:
// its first line is "cpu" and the ticks of user, nice, system, idle,
// iowait, irq, softirq, steal, then guest times already counted in user
// and nice.
func parseCPUSteal(stat string) (steal, total uint64, err error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("malformed /proc/stat line %q", line)
	}
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat field %d %q: %w", i+1, v, err)
		}
		total += n
		if i == 7 {
			steal = n
		}
	}
	return steal, total, nil
}

// rssKiB returns the summed resident set size (VmRSS) of pids, in KiB.
// Pages shared between processes (nginx's workers and master) count once
// per process, as `ps` shows them.
func rssKiB(pids []int) (int64, error) { return statusSumKiB(pids, "VmRSS") }

// peakRSSKiB returns the summed peak resident set size (VmHWM) of pids
// since they started, in KiB.
func peakRSSKiB(pids []int) (int64, error) { return statusSumKiB(pids, "VmHWM") }

// statusSumKiB sums the field key of /proc/<pid>/status over pids.
func statusSumKiB(pids []int, key string) (int64, error) {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
		}
		kib, err := parseStatusKiB(string(b), key)
		if err != nil {
			return 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
		}
		sum += kib
	}
	return sum, nil
}

// parseStatusKiB returns the value in KiB of key ("VmRSS") in the text of
// /proc/<pid>/status.
func parseStatusKiB(status, key string) (int64, error) {
	for line := range strings.Lines(status) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != key {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: malformed value %q", key, strings.TrimSpace(rest))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s not found", key)
}

// ioSyscalls returns the read-like plus write-like system calls (syscr +
// syscw in /proc/<pid>/io) the processes pids have made so far: read,
// write, readv, writev and the like, but not send, recv, epoll or futex.
func ioSyscalls(pids []int) (uint64, error) {
	var sum uint64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			return 0, fmt.Errorf("read syscall counts of pid %d: %w", pid, err)
		}
		n, err := parseIOSyscalls(string(b))
		if err != nil {
			return 0, fmt.Errorf("read syscall counts of pid %d: %w", pid, err)
		}
		sum += n
	}
	return sum, nil
}

// parseIOSyscalls returns syscr + syscw from the text of /proc/<pid>/io.
func parseIOSyscalls(io string) (uint64, error) {
	var sum uint64
	found := 0
	for line := range strings.Lines(io) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "syscr" && name != "syscw") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		sum += n
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("syscr or syscw missing in %q", io)
	}
	return sum, nil
}
