package keeper

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EnvFD names the environment variable that carries the daemon's end of
// the control link: a file descriptor number.
const EnvFD = "CUTOVER_KEEPER_FD"

// EnvDataDir names the environment variable with the keeper's data
// directory: a daemon whose config now names another one must not serve
// (it would take neither the old daemon's lock nor its instances).
const EnvDataDir = "CUTOVER_KEEPER_DATA_DIR"

// Words of the control link (see the package doc).
const (
	MsgPrepared = "prepared"
	MsgReady    = "ready"
	MsgReleased = "released"
	MsgRefused  = "refused"
	MsgResumed  = "resumed"
	MsgFailed   = "failed"
	MsgClosed   = "closed"
	MsgRelease  = "release"
	MsgResume   = "resume"
	MsgStop     = "stop"
)

// ReleasedArg is the argument of "released": drain, how long the daemon
// may take to exit after the SIGTERM that ends it beyond the keeper's stop
// grace (the longest drain_timeout of its TCP ports, whose open
// connections it carries to their end after a handover). "" for none.
func ReleasedArg(drain time.Duration) string {
	if drain <= 0 {
		return ""
	}
	return "drain=" + drain.String()
}

// releasedDrain reads the argument of "released" (ReleasedArg). That of a
// daemon older than it ("") or one it cannot read is 0.
func releasedDrain(arg string) time.Duration {
	v, ok := strings.CutPrefix(arg, "drain=")
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// Msg is one line of the control link.
type Msg struct {
	Word string
	Arg  string
}

func parseMsg(line string) Msg {
	w, a, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
	return Msg{Word: w, Arg: a}
}

// conn is one end of a control link: lines in, lines out.
type conn struct {
	c    net.Conn
	wmu  sync.Mutex
	msgs chan Msg // closed at EOF
}

func newConn(c net.Conn) *conn {
	l := &conn{c: c, msgs: make(chan Msg, 16)}
	go func() {
		defer close(l.msgs)
		defer c.Close() //nolint:errcheck // EOF: the other end is gone
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			l.msgs <- parseMsg(sc.Text())
		}
	}()
	return l
}

func (l *conn) send(word, arg string) error {
	line := word
	if arg != "" {
		line += " " + strings.ReplaceAll(arg, "\n", " ")
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_, err := l.c.Write([]byte(line + "\n"))
	return err
}

// Link is a daemon's end of the control link to its keeper.
type Link struct{ *conn }

// LinkFromEnv returns the control link the keeper passed (nil, nil when
// the daemon runs without a keeper). It unsets EnvFD, and the descriptor
// it returns is close-on-exec, so the app's instances inherit neither.
func LinkFromEnv() (*Link, error) {
	v, ok := os.LookupEnv(EnvFD)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(EnvFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: want a file descriptor number", EnvFD, v)
	}
	f := os.NewFile(uintptr(fd), "keeper")
	c, err := net.FileConn(f) // a close-on-exec dup
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("keeper control link (fd %d): %w", fd, err)
	}
	return &Link{newConn(c)}, nil
}

// Send writes one message to the keeper.
func (l *Link) Send(word, arg string) error {
	if err := l.send(word, arg); err != nil {
		return fmt.Errorf("tell the keeper %s: %w", word, err)
	}
	return nil
}

// Messages delivers the keeper's messages; it is closed when the keeper
// is gone (EOF), which the daemon takes as an order to stop.
func (l *Link) Messages() <-chan Msg { return l.msgs }

// Close closes the link.
func (l *Link) Close() error { return l.c.Close() }

// NewLink returns a Link over c: one end of a control link made by other
// means than the keeper's (tests play the keeper with it).
func NewLink(c net.Conn) *Link { return &Link{newConn(c)} }
