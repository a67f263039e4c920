package datadir

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// HeldError is a lock file that another live process holds.
type HeldError struct {
	Path string
	PID  string // as the holder wrote it; "" when unreadable
}

func (e *HeldError) Error() string {
	if e.PID == "" {
		return "lock " + e.Path + " held"
	}
	return "lock " + e.Path + " held by pid " + e.PID
}

// Lock takes an exclusive flock on path, a file in the data directory
// (created 0600), and writes this process's pid in it for people to read.
// The kernel drops the lock when the process dies, however it dies, so a
// killed daemon never leaves a stale one. A lock another process holds is
// a *HeldError.
func Lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path) //nolint:errcheck // the holder's pid is informative only
		f.Close()
		return nil, &HeldError{Path: path, PID: strings.TrimSpace(string(b))}
	}
	f.Truncate(0)                       //nolint:errcheck // the pid is informative only
	fmt.Fprintf(f, "%d\n", os.Getpid()) //nolint:errcheck // informative only
	return func() { f.Close() }, nil
}

// ListenUnix listens on a unix socket at path, in the data directory, and
// makes it 0600. A stale socket is removed first: the caller holds the lock
// that proves no other process serves it. The mode is set with chmod, not
// through the umask, which is per process: instances forked meanwhile
// would inherit a changed one. Until the chmod the socket has the umask's
// mode, out of other users' reach inside the 0700 data directory.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
