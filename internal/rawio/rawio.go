// Package rawio reads and writes a socket with system calls the Go
// scheduler does not see.
//
// A net.Conn read or write is a system call wrapped in the runtime's
// entersyscall/exitsyscall: while it lasts, the goroutine's P counts as
// blocked, and the runtime's monitor thread, finding it so twice 20 µs
// apart, hands the P to another thread. On a busy proxy every request
// makes four such calls on non-blocking sockets; on loopback a write also
// runs the receiver's network stack, long enough for those hand-offs to
// happen all the time, each one waking a thread. Conn makes the same calls
// as raw system calls: the P stays with its goroutine, as for any short
// computation. The sockets are non-blocking (the runtime made them so), so
// a call never waits: when there is nothing to read or no room to write,
// Conn parks the goroutine through syscall.RawConn exactly as net.Conn
// does, with the same deadlines and errors.
package rawio

import (
	"io"
	"net"
	"os"
	"syscall"
)

// Conn reads and writes a socket through raw system calls; see the
// package documentation. The zero value is not usable: use New.
type Conn struct {
	rc    syscall.RawConn
	laddr net.Addr
	raddr net.Addr
}

// New returns a Conn over c's socket, or nil when c has none (not a
// syscall.Conn, or its SyscallConn fails): the caller then uses c.
func New(c net.Conn) *Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &Conn{rc: rc, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
}

// Read reads into p like net.Conn's Read: at least one byte, or io.EOF
// at the end, or an error (deadline errors are net.Error timeouts).
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, errno = read(fd, p)
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			return true
		}
	})
	if err != nil {
		return 0, renamed(err, "read")
	}
	if errno != 0 {
		return 0, c.opError("read", errno)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p like net.Conn's Write.
func (c *Conn) Write(p []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := write(fd, p[n:])
			switch e {
			case 0:
				n += m
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err != nil {
		return n, renamed(err, "write")
	}
	if errno != 0 {
		return n, c.opError("write", errno)
	}
	return n, nil
}

// renamed gives an error of syscall.RawConn (a deadline, a closed
// connection) the operation name net.Conn's would have ("read", not
// "raw-read"), for callers that look at it.
func renamed(err error, op string) error {
	if oe, ok := err.(*net.OpError); ok { //nolint:errorlint // RawConn returns it unwrapped
		e := *oe
		e.Op = op
		return &e
	}
	return err
}

// opError wraps errno as net.Conn's methods do.
func (c *Conn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: os.NewSyscallError(op, errno)}
}
