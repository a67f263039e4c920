package supervisor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// An instance's output goes through a pipe to a log writer: this very
// binary, re-executed with argv[0] logWriterArg0 (and logWriterEnv set, so
// that a binary merely named so is not taken for one). The init function
// below runs it before main, so that every binary linking this package —
// cutover itself and each test binary that starts instances — can be one.
// See the package documentation for why a process of its own.
const (
	logWriterArg0 = "cutover-log-writer"
	logWriterEnv  = "CUTOVER_LOG_WRITER"
)

func init() {
	if len(os.Args) == 4 && os.Args[0] == logWriterArg0 && os.Getenv(logWriterEnv) == "1" {
		os.Exit(logWriterMain(os.Args[1:]))
	}
}

// pipeSize is the capacity asked for the pipe of an instance's output:
// 1 MiB (the kernel's limit for an unprivileged process,
// /proc/sys/fs/pipe-max-size, by default) lets an app write in bursts
// while its log writer waits for the disk.
const pipeSize = 1 << 20

// maxChunk bounds one read of the log writer, hence one write to the log
// file; a chunk (with the note that may precede it, see noteRoom) is also
// never larger than the cap, so that a file rotated before a chunk that
// would take it past the cap never exceeds the cap.
const maxChunk = 256 << 10

// logDrainTimeout bounds the wait, after an instance's process group is
// gone, for its log writer to write what is left in the pipe; a process
// that left the group and still holds the pipe would otherwise hold it up.
const logDrainTimeout = 2 * time.Second

// openOutput returns the file to give an instance as its standard output
// and error: /dev/null when spec has no log, else the write end of a pipe
// whose read end a newly started log writer copies into spec.LogPath. The
// caller closes it once the instance has started. The log writer is not
// the instance's child nor in its process group: it ends when the last
// process holding the write end — the instance, or anything it forked —
// has gone, after writing all they wrote. A goroutine reaps it and then
// closes written (already closed for /dev/null).
func (s *Supervisor) openOutput(spec Spec) (out *os.File, written <-chan struct{}, err error) {
	done := make(chan struct{})
	if spec.LogPath == os.DevNull {
		close(done)
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		return f, done, err
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o700); err != nil {
		return nil, nil, fmt.Errorf("open log %s: %w", spec.LogPath, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("open log %s: %w", spec.LogPath, err)
	}
	defer r.Close() // the log writer has its own copy
	// Best effort: a smaller pipe only makes bursts wait sooner.
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	cmd := exec.Command("/proc/self/exe", spec.LogPath, strconv.FormatInt(spec.LogMaxSize, 10), spec.Instance)
	cmd.Args[0] = logWriterArg0
	cmd.Env = []string{logWriterEnv + "=1", "GOMAXPROCS=1"}
	cmd.Dir = "/"
	cmd.Stdin = r
	// Its own reports (a full disk) go where the daemon's log goes, and
	// stay there when the daemon is gone.
	cmd.Stderr = os.Stderr
	// Its own group: neither the signals sent to the instance's group
	// nor a Ctrl-C to the daemon's terminal reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("start the log writer of %s: %w", spec.LogPath, err)
	}
	go func() {
		defer close(done)
		// Reaping only: how it ended is in its own reports.
		_ = cmd.Wait()
	}()
	return w, done, nil
}

// logWriterMain is the log writer process: it copies its standard input
// into the log file args[0], capped at args[1] bytes (0: no cap), for the
// instance args[2], until end of file.
func logWriterMain(args []string) int {
	// It must outlive hang-ups and stop requests of the daemon's terminal
	// or service, and write errors on its stderr must not kill it: its end
	// comes from end of input, so that no output is lost.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	max, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || max < 0 {
		fmt.Fprintf(os.Stderr, "%s: bad size cap %q\n", logWriterArg0, args[1])
		return 2
	}
	w := newLogWriter(args[0], max,
		slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "log-writer", "instance", args[2], "pid", os.Getpid()))
	w.open() // at once, so that the log exists from the instance's start; a failure is reported and retried
	if err := w.copy(os.Stdin); err != nil {
		w.log.Error("read the instance's output", "path", w.path, "err", err)
		return 1
	}
	return 0
}

// logWriter copies an instance's output into its log file. It rotates the
// file (renamed to <path>.1, replacing the previous one) before a write
// that would take it past max, so the file never holds more than max
// bytes. Writes that fail (a full disk) are dropped and counted: the
// instance is never blocked or stopped by its log, and the first failure
// and the recovery are reported once each.
type logWriter struct {
	path string
	max  int64 // 0: no cap
	log  *slog.Logger
	now  func() time.Time

	f    *os.File // nil while the file could not be opened
	size int64    // bytes in f, as far as this writer knows

	sinceCheck int64 // bytes written since checkRoom last looked
	checkEvery int64 // bytes between two looks (0: look at the next write)
	low        bool  // checkRoom found too little room at its last look

	dropped int64     // bytes dropped since failing began
	failing error     // the first error of the current run of failures; nil when writing
	retryAt time.Time // while failing, when to try writing again
}

func newLogWriter(path string, max int64, log *slog.Logger) *logWriter {
	return &logWriter{path: path, max: max, log: log, now: time.Now}
}

// copy writes what r gives until end of input, then closes the file.
func (w *logWriter) copy(r io.Reader) error {
	size := maxChunk
	if w.max > 0 && w.max-noteRoom < int64(size) {
		size = int(w.max - noteRoom) // the cap is at least 4096
	}
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.write(buf[:n])
		}
		if errors.Is(err, io.EOF) {
			w.finish()
			return nil
		}
		if err != nil && !errors.Is(err, syscall.EINTR) {
			w.finish()
			return err
		}
	}
}

// write appends b, rotating first if b would take the file past the cap.
// While writes fail, they are tried again once a second, not at every
// chunk: the rest is dropped at once, which keeps the instance's output
// flowing and the reports few.
func (w *logWriter) write(b []byte) {
	if w.failing != nil && w.now().Before(w.retryAt) {
		w.dropped += int64(len(b))
		return
	}
	data := len(b) // the instance's bytes; b may get the note before them
	if w.failing != nil {
		// The note of the loss goes first, in the same write.
		b = append([]byte(w.note()), b...)
	}
	if w.f != nil && w.max > 0 && w.size > 0 && w.size+int64(len(b)) > w.max {
		w.rotate()
	}
	if w.f == nil && !w.open() {
		w.drop(data, nil)
		return
	}
	if err := w.checkRoom(len(b)); err != nil {
		w.drop(data, err)
		return
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		w.drop(min(data, len(b)-n), err)
		return
	}
	if w.failing != nil {
		w.log.Info("the instance's log is written again", "path", w.path, "dropped_bytes", w.dropped, "err", w.failing)
		w.failing, w.dropped = nil, 0
	}
}

// noteRoom is kept free in each chunk for the note that may go before it:
// with it, a chunk still fits within the cap.
const noteRoom = 256

// errLowSpace is why output is dropped while the file system is nearly
// full: what is left is kept for the daemon's state.
var errLowSpace = errors.New("the file system is nearly full: its last 5% (at most 64 MiB) are left for cutover's state")

// roomCheckEvery is how many bytes may be written between two looks at
// the file system's free space: at most, and a quarter of the reserve on
// a small file system, so that no run of writes between looks can eat it.
const roomCheckEvery = 256 << 10

// checkRoom returns errLowSpace if writing n bytes would leave less free
// space on the log's file system than the reserve: the app's logs must not
// take the last of a disk the daemon's state (state.db, on the same data
// dir) needs, or a full disk would fail the daemon's deploys. It looks
// (fstatfs) once per roomCheckEvery bytes written, or fewer.
func (w *logWriter) checkRoom(n int) error {
	w.sinceCheck += int64(n)
	if w.sinceCheck < w.checkEvery && !w.low {
		return nil
	}
	w.sinceCheck = 0
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(w.f.Fd()), &st); err != nil {
		return nil // no answer: the write itself will tell
	}
	size := int64(st.Blocks) * st.Bsize
	free := int64(st.Bavail) * st.Bsize
	reserve := min(size/20, 64<<20)
	w.checkEvery = min(max(reserve/4, 4096), roomCheckEvery)
	w.low = free-int64(n) < reserve
	if w.low {
		return errLowSpace
	}
	return nil
}

// note is the line written into the log when writing works again. The
// error is given without the path (the note is in that file), which keeps
// the line within noteRoom.
func (w *logWriter) note() string {
	why := w.failing.Error()
	var pe *fs.PathError
	if errors.As(w.failing, &pe) {
		why = pe.Op + ": " + pe.Err.Error()
	}
	if len(why) > noteRoom-80 {
		why = why[:noteRoom-80]
	}
	return fmt.Sprintf("cutover: %d bytes of this instance's output were dropped: %s\n", w.dropped, why)
}

// open opens (creating) the log file for appending. It reports whether
// the file is open.
func (w *logWriter) open() bool {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(w.path), 0o700); err == nil {
			f, err = os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		}
	}
	var fi os.FileInfo
	if err == nil {
		if fi, err = f.Stat(); err != nil {
			f.Close()
		}
	}
	if err != nil {
		if w.failing == nil {
			w.drop(0, fmt.Errorf("open log: %w", err))
		}
		return false
	}
	w.f, w.size = f, fi.Size()
	return true
}

// rotate renames the file to <path>.1 and opens a new one. If another
// writer of the same path (an earlier process of the instance, still
// draining what a forked helper writes) rotated it already, it only
// reopens. A rename that fails truncates instead, to hold the cap.
func (w *logWriter) rotate() {
	old := w.f
	w.f = nil
	ours, err := old.Stat()
	if cur, serr := os.Stat(w.path); err == nil && serr == nil && os.SameFile(ours, cur) {
		if rerr := os.Rename(w.path, w.path+".1"); rerr != nil {
			w.log.Warn("rotate the log by renaming it failed; truncating it instead", "path", w.path, "err", rerr)
			if terr := old.Truncate(0); terr == nil {
				w.f, w.size = old, 0
				return
			}
		}
	}
	old.Close() // written with write(2): nothing buffered to lose
	w.open()
}

// drop counts n bytes that could not be written because of err (nil:
// the file is not open), reports the first failure of a run, and puts off
// the next try by a second.
func (w *logWriter) drop(n int, err error) {
	w.retryAt = w.now().Add(time.Second)
	w.dropped += int64(n)
	if w.failing != nil {
		return
	}
	if err == nil {
		err = errors.New("log file not open")
	}
	w.failing = err
	w.log.Warn("the instance's output cannot be written to its log; it is dropped (and counted) until writing works again; the instance goes on",
		"path", w.path, "err", err)
	// A failed write may have written part; make sure of the size the cap
	// is measured against.
	if w.f != nil {
		if fi, serr := w.f.Stat(); serr == nil {
			w.size = fi.Size()
		}
	}
}

// finish reports output dropped to the end, and closes the file.
func (w *logWriter) finish() {
	if w.failing != nil {
		w.log.Warn("the instance's output ended while its log could not be written", "path", w.path, "dropped_bytes", w.dropped, "err", w.failing)
	}
	if w.f != nil {
		w.f.Close() // written with write(2): nothing buffered to lose
	}
}
