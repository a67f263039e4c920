package release

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// runStreamed runs argv in dir with env, in a process group of its own, and
// hands each line of its merged stdout and stderr to out as it comes. It
// returns the last tailLines lines and the exit code (128+n for death by
// signal n). err is set only when the command could not run or ctx ended;
// cancelling ctx kills the whole process group. A nil out discards output.
// started, if not nil, is called with the process group's id as soon as the
// command runs, and the func it returns once the group is gone.
func runStreamed(ctx context.Context, stream, dir string, env []string, out func(stream, line string), started Started, argv ...string) (tail []string, code int, err error) {
	if out == nil {
		out = func(string, string) {}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, 0, fmt.Errorf("run %s: %w", argv[0], err)
	}
	defer pr.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, 0, fmt.Errorf("run %s: %w", argv[0], err)
	}
	pw.Close() // the child holds its own copy; EOF comes when the group is gone
	if started != nil {
		if ended := started(cmd.Process.Pid); ended != nil {
			defer ended()
		}
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		readLines(pr, func(line string) {
			out(stream, line)
			tail = append(tail, line)
			if len(tail) > tailLines {
				tail = tail[len(tail)-tailLines:]
			}
		})
	}()
	waitErr := cmd.Wait()
	// Whatever the command left running in its group (a server a test
	// forgot to stop) would outlive the release's checkout and hold the
	// output pipe open: it goes too. ESRCH (nothing left) is the usual case.
	// The group id cannot have been reused so soon: pids are handed out in
	// sequence up to pid_max before wrapping.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // see above
	select {
	case <-done:
	case <-ctx.Done():
		// A process that left the group (setsid) still holds the pipe.
		pr.Close()
		<-done
	}
	if ctx.Err() != nil {
		return tail, 0, fmt.Errorf("run %s: %w", argv[0], context.Cause(ctx))
	}
	var exit *exec.ExitError
	switch {
	case waitErr == nil:
		return tail, 0, nil
	case errors.As(waitErr, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return tail, 128 + int(ws.Signal()), nil
		}
		return tail, exit.ExitCode(), nil
	default:
		return tail, 0, fmt.Errorf("run %s: %w", argv[0], waitErr)
	}
}

// Started is told of each command cutover runs (git, test, build, hooks):
// pgid is the id of the process group the command leads. The func it
// returns, if not nil, is called once the command and whatever it left in
// its group are gone. A daemon records the groups it runs so that, killed
// while one runs, its successor can stop what it left behind.
type Started func(pgid int) (ended func())

// maxLine bounds one line of output; a longer one is handed on in pieces.
const maxLine = 64 << 10

// readLines calls emit for each line read from r, without its line ending,
// until r ends or fails.
func readLines(r io.Reader, emit func(string)) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			emit(strings.TrimRight(string(line), "\r\n"))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return // io.EOF, or the pipe closed after cancellation
		}
	}
}

// runGit runs git with args like runStreamed and turns a non-zero exit into
// an error carrying git's last line of output.
func runGit(ctx context.Context, dir string, env []string, out func(stream, line string), started Started, args ...string) error {
	tail, code, err := runStreamed(ctx, StreamGit, dir, env, out, started, append([]string{"git"}, args...)...)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("git exited with code %d%s", code, lastLine(tail))
	}
	return nil
}
