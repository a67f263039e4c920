package supervisor

// Booting at a lower CPU priority (Spec.BootNice).

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxNice is the lowest priority Linux has.
const maxNice = 19

// ThreadNice returns the nice value of the thread tid (0: the calling
// thread). The system call returns 20 - nice; x/sys does not undo it.
func ThreadNice(tid int) (int, error) {
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return 0, err
	}
	return 20 - raw, nil
}

var restorable struct {
	once sync.Once
	ok   bool
}

// PriorityRestorable reports whether this process may give an instance back
// the priority it lowered at its boot: whether it may raise a priority by
// one step (root, CAP_SYS_NICE, or an RLIMIT_NICE that reaches its own
// nice value). Without that, Spec.BootNice is ignored, so that no instance
// would serve at the lowered priority. Tried once, on a thread of its own
// that is thrown away should the priority not come back.
func PriorityRestorable() bool {
	restorable.once.Do(func() {
		done := make(chan bool)
		go func() {
			runtime.LockOSThread()
			tid := unix.Gettid()
			cur, err := ThreadNice(tid)
			if err != nil || cur >= maxNice || unix.Setpriority(unix.PRIO_PROCESS, tid, cur+1) != nil {
				runtime.UnlockOSThread()
				done <- false
				return
			}
			if unix.Setpriority(unix.PRIO_PROCESS, tid, cur) != nil {
				// Still locked: the thread, at cur+1, ends with this
				// goroutine.
				done <- false
				return
			}
			runtime.UnlockOSThread()
			done <- true
		}()
		restorable.ok = <-done
	})
	return restorable.ok
}

// BootNiceProblem says why a Spec.BootNice of bootNice would have no
// effect in this process, or returns "" when it works. The daemon logs it
// at start.
func BootNiceProblem(bootNice int) string {
	base, err := ThreadNice(0)
	return bootNiceProblem(bootNice, base, err, PriorityRestorable)
}

// bootNiceProblem is BootNiceProblem with the daemon's nice value (or the
// error reading it) and the restorable check given.
func bootNiceProblem(bootNice, base int, baseErr error, restorable func() bool) string {
	switch {
	case bootNice <= 0:
		return ""
	case baseErr == nil && base >= maxNice:
		return fmt.Sprintf("the daemon itself runs at the lowest priority (nice %d), so there is none lower to boot at", base)
	case !restorable():
		return "it needs a daemon allowed to raise an instance's priority back once it is healthy (root, CAP_SYS_NICE, or systemd's LimitNICE=)"
	}
	return ""
}

// setGroupNice sets the nice value of every thread of every process in
// the process group pgid. Linux keeps a nice value per thread; for a
// process group it sets them all, and threads started later inherit their
// starter's — but a thread its starter began to create before the call
// reached the starter, and that joins the group only after the call went
// by, keeps the old value. So the call is made again until every thread
// of the group's leader (pgid, the instance's process) has the value, a
// few times at most over about 30 ms; the other processes of the group
// get the same passes.
func setGroupNice(pgid, nice int) error {
	for i := range settlePasses {
		if err := unix.Setpriority(unix.PRIO_PGRP, pgid, nice); err != nil {
			return err
		}
		if threadsAt(pgid, nice) {
			return nil
		}
		time.Sleep(time.Millisecond << i)
	}
	return nil
}

// settlePasses bounds setGroupNice's passes: 1+2+4+8+16 ms of waits.
const settlePasses = 5

// threadsAt reports whether every thread of process pid has nice value
// nice (true when they cannot be listed: nothing more to do).
func threadsAt(pid, nice int) bool {
	tids, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, d := range tids {
		tid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if n, err := ThreadNice(tid); err == nil && n != nice {
			return false
		}
	}
	return true
}
