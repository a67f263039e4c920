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
	"sync"
	"syscall"
)

// Conn reads and writes a socket through raw system calls; see the
// package documentation. Reads are serialized, and so are writes; a read
// may run beside a write. The zero value is not usable: use New.
type Conn struct {
	rc    syscall.RawConn
	laddr net.Addr
	raddr net.Addr

	// The state of the read and of the write in progress, kept here so
	// that the functions handed to rc, made once, allocate nothing.
	rmu    sync.Mutex
	rbuf   []byte
	rn     int
	rerrno syscall.Errno
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werrno  syscall.Errno
	writeFn func(uintptr) bool
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
	rw := &Conn{rc: rc, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
	rw.readFn = rw.readOnce
	rw.writeFn = rw.writeAll
	return rw
}

// Read reads into p like net.Conn's Read: at least one byte, or io.EOF
// at the end, or an error (deadline errors are net.Error timeouts).
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerrno = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerrno
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, renamed(err, "read")
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readOnce reads once from fd; false asks rc to wait for data.
func (c *Conn) readOnce(fd uintptr) bool {
	for {
		n, errno := read(fd, c.rbuf)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rn, c.rerrno = n, errno
		return true
	}
}

// Write writes all of p like net.Conn's Write.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werrno = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werrno
	c.wbuf = nil
	switch {
	case err != nil:
		return n, renamed(err, "write")
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

// writeAll writes what is left of wbuf to fd; false asks rc to wait for
// room.
func (c *Conn) writeAll(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		m, errno := write(fd, c.wbuf[c.wn:])
		switch errno {
		case 0:
			c.wn += m
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werrno = errno
			return true
		}
	}
	return true
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
