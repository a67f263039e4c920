package cli

import (
	"os"
	"strconv"
	"syscall"
)

// clientNice is the CPU priority (nice value) of a command that talks to
// the daemon. Such a command only sends its request and prints what the
// daemon reports, while on the same CPUs the proxy and the app serve
// requests: on a busy machine those must come first. The deploy itself runs
// in the daemon, at the daemon's priority.
const clientNice = 10

// lowerPriority sets every thread of the process to clientNice, unless it
// already runs at that or nicer. Linux keeps a nice value per thread and a
// new thread inherits its starter's, so every thread is set, twice over in
// case the runtime started one meanwhile. Best effort: a failure leaves the
// priority as it was.
func lowerPriority() {
	for range 2 {
		for _, tid := range threads() {
			// The system call returns 20 - nice, Go's wrapper does not undo it.
			raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
			if err != nil || 20-raw >= clientNice {
				continue
			}
			syscall.Setpriority(syscall.PRIO_PROCESS, tid, clientNice) //nolint:errcheck // best effort
		}
	}
}

// threads returns the ids of the process's threads, or 0 (the calling
// thread, or the process where priorities are per process) without /proc.
func threads() []int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return []int{0}
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}
