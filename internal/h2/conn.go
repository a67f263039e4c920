package h2

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The protocol's constants (RFC 9113).
const (
	clientPreface     = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	defaultWindow     = 65535 // a window's size until SETTINGS change it
	defaultFrameSize  = 16384 // SETTINGS_MAX_FRAME_SIZE's initial value
	maxWindow         = 1<<31 - 1
	defaultTableSize  = 4096    // SETTINGS_HEADER_TABLE_SIZE's initial value
	streamRecvWindow  = 1 << 20 // the window each stream is given
	connRecvWindow    = 1 << 20 // the connection's window
	readBufSize       = 8 << 10
	writeBufSize      = 16 << 10
	goAwayLinger      = time.Second // how long a closing connection is read and discarded
	recentResetStream = 16          // how many streams we reset are remembered
)

// conn is one HTTP/2 connection. Its serve goroutine reads the frames;
// the handlers' goroutines write their own.
type conn struct {
	srv        *Server
	rwc        net.Conn
	remoteAddr string
	tlsState   *tls.ConnectionState
	br         *bufio.Reader
	// fr reads on the serve goroutine only and writes under wmu.
	fr *http2.Framer

	// wmu guards the write side: fr's writes, the encoder, bw.
	wmu     sync.Mutex
	bw      *bufio.Writer
	henc    *hpack.Encoder
	hbuf    bytes.Buffer
	pending bool // frames in bw not flushed yet
	// maxFrame is the peer's SETTINGS_MAX_FRAME_SIZE.
	maxFrame atomic.Uint32

	// mu guards the connection's state below and every stream's.
	mu sync.Mutex
	// cond is signaled when a send window opens or streams end.
	cond    sync.Cond
	streams map[uint32]*stream
	maxID   uint32 // the highest stream the client opened
	// recent are the last streams the server closed while the client
	// could still be sending on them, whose frames are then ignored.
	recent     [recentResetStream]uint32
	recentNext int
	// sendWin is the connection's send window; initWin the peer's
	// SETTINGS_INITIAL_WINDOW_SIZE.
	sendWin int64
	initWin int64
	// recvWin is what is left of the window given the client; unacked
	// what it used that has been consumed and not given back yet.
	recvWin, unacked int64
	handlers         int // handlers running
	goingAway        bool
	closing          bool // the connection closes once idle or read out
	closed           bool // the read loop ended
	idleSince        time.Time
	idleTimer        *time.Timer

	wg sync.WaitGroup // the handlers
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{
		srv:        s,
		rwc:        rwc,
		remoteAddr: rwc.RemoteAddr().String(),
		streams:    make(map[uint32]*stream),
		sendWin:    defaultWindow,
		initWin:    defaultWindow,
		recvWin:    connRecvWindow,
		idleSince:  time.Now(),
	}
	c.cond.L = &c.mu
	if tc, ok := rwc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	c.br = bufio.NewReaderSize(rwc, readBufSize)
	c.bw = bufio.NewWriterSize(rwc, writeBufSize)
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.SetMaxReadFrameSize(defaultFrameSize)
	c.fr.MaxHeaderListSize = s.maxHeaderBytes()
	c.fr.ReadMetaHeaders = hpack.NewDecoder(defaultTableSize, nil)
	c.fr.SetReuseFrames()
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.maxFrame.Store(defaultFrameSize)
	return c
}

// connError is an error of the whole connection: GOAWAY with code.
type connError struct {
	code   http2.ErrCode
	reason string
}

func (e connError) Error() string { return "h2: connection error " + e.code.String() + ": " + e.reason }

// streamError is an error of one stream: RST_STREAM with code.
type streamError struct {
	id   uint32
	code http2.ErrCode
}

func (e streamError) Error() string { return "h2: stream error " + e.code.String() }

// sendPreface sends the server's SETTINGS and the connection window's
// raise; false when the connection failed.
func (c *conn) sendPreface() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	settings := []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: c.srv.maxStreams()},
		{ID: http2.SettingInitialWindowSize, Val: streamRecvWindow},
		{ID: http2.SettingMaxHeaderListSize, Val: c.srv.maxHeaderBytes()},
	}
	if c.srv.ExtendedConnect {
		settings = append(settings, http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
	}
	_ = c.fr.WriteSettings(settings...)
	_ = c.fr.WriteWindowUpdate(0, connRecvWindow-defaultWindow)
	return c.bw.Flush() == nil
}

// serve runs the connection until it ends and its handlers returned.
func (c *conn) serve() {
	defer c.end()
	if d := c.srv.ReadHeaderTimeout; d > 0 {
		_ = c.rwc.SetReadDeadline(time.Now().Add(d))
	}
	var pre [len(clientPreface)]byte
	if _, err := io.ReadFull(c.br, pre[:]); err != nil || string(pre[:]) != clientPreface {
		if err == nil {
			c.fail(connError{http2.ErrCodeProtocol, "bad connection preface"})
		}
		return
	}
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.fail(err)
		return
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		c.fail(connError{http2.ErrCodeProtocol, "first frame is not SETTINGS"})
		return
	}
	if d := c.srv.ReadHeaderTimeout; d > 0 {
		_ = c.rwc.SetReadDeadline(time.Time{})
	}
	if d := c.srv.idleTimeout(); d > 0 {
		c.mu.Lock()
		c.idleTimer = time.AfterFunc(d, c.idleCheck)
		c.mu.Unlock()
	}
	for {
		if err == nil {
			err = c.process(f)
		}
		if err != nil {
			var se streamError
			if errors.As(err, &se) {
				c.resetStream(se.id, se.code, false)
			} else {
				c.fail(err)
				return
			}
		}
		if c.br.Buffered() == 0 {
			c.flushPending()
		}
		f, err = c.fr.ReadFrame()
		if err != nil {
			var h2se http2.StreamError
			switch {
			case errors.As(err, &h2se):
				c.mu.Lock()
				if h2se.StreamID > c.maxID && h2se.StreamID%2 == 1 {
					c.maxID = h2se.StreamID
				}
				c.mu.Unlock()
				err = streamError{h2se.StreamID, h2se.Code}
			case c.isClosing():
				return
			}
		}
	}
}

// fail ends the connection for err: a protocol error is sent as GOAWAY
// and the connection read out for a while so that the client reads it.
func (c *conn) fail(err error) {
	var code http2.ErrCode
	var ce connError
	var h2ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		code = ce.code
	case errors.As(err, &h2ce):
		code = http2.ErrCode(h2ce)
	case errors.Is(err, http2.ErrFrameTooLarge):
		code = http2.ErrCodeFrameSize
	default:
		return // the connection failed or the client left
	}
	c.mu.Lock()
	last := c.maxID
	c.goingAway, c.closing = true, true
	c.mu.Unlock()
	c.wmu.Lock()
	_ = c.fr.WriteGoAway(last, code, nil)
	_ = c.bw.Flush()
	c.wmu.Unlock()
	_ = c.rwc.SetReadDeadline(time.Now().Add(goAwayLinger))
	_, _ = io.Copy(io.Discard, c.br)
}

// end closes the connection, ends its streams and waits for their
// handlers.
func (c *conn) end() {
	c.mu.Lock()
	c.closed = true
	for _, s := range c.streams {
		s.closeLocked(errConnClosed, false)
	}
	c.cond.Broadcast()
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.mu.Unlock()
	_ = c.rwc.Close()
	c.wg.Wait()
}

var (
	errConnClosed   = errors.New("h2: connection closed")
	errClientReset  = errors.New("h2: the client reset the stream")
	errStreamClosed = errors.New("h2: stream closed")
)

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// flushPending flushes the frames the read loop wrote.
func (c *conn) flushPending() {
	c.wmu.Lock()
	if c.pending {
		c.pending = false
		_ = c.bw.Flush()
	}
	c.wmu.Unlock()
}

// process acts on one frame read.
func (c *conn) process(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		c.wmu.Lock()
		_ = c.fr.WritePing(true, f.Data)
		c.pending = true
		c.wmu.Unlock()
		return nil
	case *http2.RSTStreamFrame:
		c.mu.Lock()
		defer c.mu.Unlock()
		if f.StreamID > c.maxID {
			return connError{http2.ErrCodeProtocol, "RST_STREAM on an idle stream"}
		}
		if s := c.streams[f.StreamID]; s != nil {
			s.closeLocked(errClientReset, false)
		}
		return nil
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return streamError{f.StreamID, http2.ErrCodeProtocol}
		}
		return nil
	case *http2.GoAwayFrame:
		// The client opens no more streams: finish those open and close.
		c.goAway()
		return nil
	case *http2.PushPromiseFrame:
		return connError{http2.ErrCodeProtocol, "PUSH_PROMISE from a client"}
	case *http2.ContinuationFrame:
		return connError{http2.ErrCodeProtocol, "unexpected CONTINUATION"}
	default:
		return nil // unknown frame types are ignored
	}
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	if err := f.ForeachSetting(http2.Setting.Valid); err != nil {
		return err
	}
	// The ack goes into the buffer before any change lets a handler
	// write: a client sees it before the DATA a larger window lets
	// through.
	c.wmu.Lock()
	_ = c.fr.WriteSettingsAck()
	c.pending = true
	c.wmu.Unlock()
	return f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize:
			c.mu.Lock()
			defer c.mu.Unlock()
			delta := int64(s.Val) - c.initWin
			c.initWin = int64(s.Val)
			for _, st := range c.streams {
				st.sendWin += delta
				if st.sendWin > maxWindow {
					return connError{http2.ErrCodeFlowControl, "stream window above 2^31-1"}
				}
			}
			c.cond.Broadcast()
		case http2.SettingMaxFrameSize:
			c.maxFrame.Store(s.Val)
		case http2.SettingHeaderTableSize:
			c.wmu.Lock()
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
			c.wmu.Unlock()
		}
		return nil
	})
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		c.sendWin += inc
		if c.sendWin > maxWindow {
			return connError{http2.ErrCodeFlowControl, "connection window above 2^31-1"}
		}
		c.cond.Broadcast()
		return nil
	}
	if f.StreamID > c.maxID {
		return connError{http2.ErrCodeProtocol, "WINDOW_UPDATE on an idle stream"}
	}
	s := c.streams[f.StreamID]
	if s == nil {
		return nil // closed: it may have been on its way
	}
	s.sendWin += inc
	if s.sendWin > maxWindow {
		return streamError{f.StreamID, http2.ErrCodeFlowControl}
	}
	c.cond.Broadcast()
	return nil
}

// wasReset reports whether the server closed stream id while the client
// could still be sending on it. Called with mu held.
func (c *conn) wasReset(id uint32) bool {
	for _, r := range c.recent {
		if r == id {
			return true
		}
	}
	return false
}

func (c *conn) rememberReset(id uint32) {
	c.recent[c.recentNext] = id
	c.recentNext = (c.recentNext + 1) % len(c.recent)
}

func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length)
	c.mu.Lock()
	if id > c.maxID {
		c.mu.Unlock()
		return connError{http2.ErrCodeProtocol, "DATA on an idle stream"}
	}
	if n > c.recvWin {
		c.mu.Unlock()
		return connError{http2.ErrCodeFlowControl, "DATA beyond the connection's window"}
	}
	c.recvWin -= n
	s := c.streams[id]
	if s == nil || s.remoteDone {
		inc := c.consumedLocked(n)
		ignore := s == nil && c.wasReset(id)
		c.mu.Unlock()
		c.windowUpdate(0, inc, false)
		if ignore {
			return nil
		}
		return streamError{id, http2.ErrCodeStreamClosed}
	}
	if n > s.recvWin {
		inc := c.consumedLocked(n)
		c.mu.Unlock()
		c.windowUpdate(0, inc, false)
		return streamError{id, http2.ErrCodeFlowControl}
	}
	s.recvWin -= n
	data := f.Data()
	// Padding is consumed as it arrives.
	pad := n - int64(len(data))
	s.got += int64(len(data))
	if s.declared >= 0 && (s.got > s.declared || f.StreamEnded() && s.got != s.declared) {
		inc := c.consumedLocked(n)
		c.mu.Unlock()
		c.windowUpdate(0, inc, false)
		return streamError{id, http2.ErrCodeProtocol}
	}
	var connInc int64
	if s.bodyClosed {
		connInc = c.consumedLocked(n)
	} else {
		s.buf = append(s.buf, data...)
		connInc = c.consumedLocked(pad)
		s.unacked += pad
	}
	if f.StreamEnded() {
		s.remoteDone = true
		s.eof = true
	}
	s.bodyCond.Signal()
	c.mu.Unlock()
	c.windowUpdate(0, connInc, false)
	return nil
}

// consumedLocked counts n bytes of the connection's window as consumed
// and returns the WINDOW_UPDATE increment to send (0 for none yet): the
// window is given back by halves. Called with mu held.
func (c *conn) consumedLocked(n int64) int64 {
	c.unacked += n
	if c.unacked < connRecvWindow/2 {
		return 0
	}
	inc := c.unacked
	c.unacked = 0
	c.recvWin += inc
	return inc
}

// windowUpdate sends WINDOW_UPDATE for stream id (0: the connection)
// when inc > 0; flush says whether to flush at once (the handlers' side)
// or leave it to the read loop.
func (c *conn) windowUpdate(id uint32, inc int64, flush bool) {
	if inc <= 0 {
		return
	}
	c.wmu.Lock()
	_ = c.fr.WriteWindowUpdate(id, uint32(inc))
	if flush {
		_ = c.bw.Flush()
	} else {
		c.pending = true
	}
	c.wmu.Unlock()
}

// resetStream sends RST_STREAM for id and ends the stream, if open.
func (c *conn) resetStream(id uint32, code http2.ErrCode, flush bool) {
	c.mu.Lock()
	if s := c.streams[id]; s != nil {
		s.closeLocked(errStreamClosed, true)
	} else if !c.wasReset(id) {
		c.rememberReset(id)
	}
	c.mu.Unlock()
	c.wmu.Lock()
	_ = c.fr.WriteRSTStream(id, code)
	if flush {
		_ = c.bw.Flush()
	} else {
		c.pending = true
	}
	c.wmu.Unlock()
}

// goAway starts a graceful close: GOAWAY naming the last stream taken,
// later streams refused, the connection closed once its streams are
// done.
func (c *conn) goAway() {
	c.mu.Lock()
	if c.goingAway || c.closed {
		c.mu.Unlock()
		return
	}
	c.goingAway = true
	last := c.maxID
	idle := len(c.streams) == 0 && c.handlers == 0
	c.mu.Unlock()
	c.wmu.Lock()
	_ = c.fr.WriteGoAway(last, http2.ErrCodeNo, nil)
	_ = c.bw.Flush()
	c.wmu.Unlock()
	if idle {
		c.closeIdle()
	}
}

// closeIdle closes a connection that went away and has no stream left:
// its write side is closed (a TLS close_notify) so that the client closes
// too, and it is read out for a while at most.
func (c *conn) closeIdle() {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.mu.Unlock()
	c.wmu.Lock()
	_ = c.bw.Flush()
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	c.wmu.Unlock()
	_ = c.rwc.SetReadDeadline(time.Now().Add(goAwayLinger))
}

// idleCheck runs when the idle timer fires: a connection with no stream
// for IdleTimeout goes away.
func (c *conn) idleCheck() {
	d := c.srv.idleTimeout()
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.streams) > 0 || c.handlers > 0 {
		c.idleTimer.Reset(d)
		c.mu.Unlock()
		return
	}
	if left := d - time.Since(c.idleSince); left > 0 {
		c.idleTimer.Reset(left)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.goAway()
}

// processHeaders opens a stream, or takes a stream's trailers.
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return connError{http2.ErrCodeProtocol, "even stream id from a client"}
	}
	c.mu.Lock()
	if s := c.streams[id]; s != nil {
		defer c.mu.Unlock()
		if s.remoteDone {
			if s.ended.Load() {
				// Closed both ways; its handler is only finishing.
				return connError{http2.ErrCodeStreamClosed, "HEADERS on a closed stream"}
			}
			return streamError{id, http2.ErrCodeStreamClosed}
		}
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			return streamError{id, http2.ErrCodeProtocol}
		}
		if s.declared >= 0 && s.got != s.declared {
			return streamError{id, http2.ErrCodeProtocol}
		}
		for _, hf := range f.RegularFields() {
			if s.trailer == nil {
				s.trailer = make(http.Header)
			}
			k := canonicalKey(hf.Name)
			s.trailer[k] = append(s.trailer[k], hf.Value)
		}
		s.remoteDone, s.eof = true, true
		s.bodyCond.Signal()
		return nil
	}
	if id <= c.maxID {
		ignore := c.wasReset(id)
		c.mu.Unlock()
		if ignore {
			return nil
		}
		return connError{http2.ErrCodeStreamClosed, "HEADERS on a closed stream"}
	}
	c.maxID = id
	switch {
	case c.goingAway:
		c.mu.Unlock()
		return streamError{id, http2.ErrCodeRefusedStream}
	case f.HasPriority() && f.Priority.StreamDep == id:
		c.mu.Unlock()
		return streamError{id, http2.ErrCodeProtocol}
	case uint32(len(c.streams)) >= c.srv.maxStreams():
		c.mu.Unlock()
		return streamError{id, http2.ErrCodeRefusedStream}
	}
	c.mu.Unlock()
	s, err := c.newStream(f)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errConnClosed
	}
	s.sendWin = c.initWin
	c.streams[id] = s
	c.handlers++
	c.wg.Add(1)
	c.mu.Unlock()
	h := c.srv.Handler
	if f.Truncated {
		h = headersTooLarge
	}
	go s.run(h)
	return nil
}

// headersTooLarge answers a request whose header list is over
// MaxHeaderBytes.
var headersTooLarge = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	_, _ = io.WriteString(w, "431 Request Header Fields Too Large\n")
})

// streamDone is called by a stream's handler goroutine when it is done.
func (c *conn) streamDone() {
	c.mu.Lock()
	c.handlers--
	c.idleSince = time.Now()
	idle := len(c.streams) == 0 && c.handlers == 0
	away := c.goingAway
	c.mu.Unlock()
	if idle && away {
		c.closeIdle()
	}
}
