package demoapp

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockExclusive takes an exclusive flock on path (created if missing)
// without waiting, and writes the process's pid into it, so that a second
// copy can say who holds it. It returns the function that releases it. An
// app on one SQLite file under an exclusive lock fails the same way when
// a second copy starts beside it.
func lockExclusive(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("DEMO_LOCK_FILE: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("DEMO_LOCK_FILE %s is locked by another copy of the app%s: this app runs one copy at a time; stop the other copy first (deploy.strategy = \"stop-first\" does)", path, holder)
		}
		return nil, fmt.Errorf("DEMO_LOCK_FILE %s: lock: %w", path, err)
	}
	// The pid is only for the message above; failing to write it costs
	// nothing else.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
