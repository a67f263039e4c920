// Package lowprio runs a piece of work at a lower CPU priority than the
// rest of the process: the daemon's own deploy work (copying a release in,
// removing old ones) then takes the CPU the serving app leaves instead of
// slowing its requests, the way app.boot_nice does for a new instance's
// boot.
//
// Linux keeps a nice value per thread. Do runs the work on a goroutine
// locked to its OS thread, lowers that thread's priority, and never gives
// the thread back: when the goroutine ends still locked, the Go runtime
// ends the thread with it, so no other goroutine ever runs at the lowered
// priority, and no priority has to be raised back (which needs privileges).
// While a goroutine is locked, the runtime starts any new thread from a
// clean template thread, not from the locked one, so the lowered priority
// does not spread either.
package lowprio

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// maxNice is the lowest priority Linux has.
const maxNice = 19

// Do runs fn at nice more than the calling thread's priority (capped at
// the lowest, 19) and returns its error. With nice 0 or less, or when the
// priority cannot be read or set, fn runs all the same, at the usual
// priority: the work matters more than its priority.
func Do(nice int, fn func() error) error {
	if nice <= 0 {
		return fn()
	}
	base, err := threadNice()
	if err != nil {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread ends with this goroutine.
		tid := unix.Gettid()
		_ = unix.Setpriority(unix.PRIO_PROCESS, tid, min(base+nice, maxNice)) // best effort, see Do
		done <- fn()
	}()
	return <-done
}

// threadNice returns the calling thread's nice value. The system call
// returns 20 - nice; x/sys does not undo it.
func threadNice() (int, error) {
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0, err
	}
	return 20 - raw, nil
}
