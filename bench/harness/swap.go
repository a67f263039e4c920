package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/health"
)

// swapper is the control of the deploy scenario: the least any deploy tool
// does on the machine, without cutover. Each swap starts another copy of
// the backend on a free loopback port, checks it every Interval until
// HealthyAfter checks in a row pass (cutover's health.Probe, with the
// same settings as cutover's checker), then stops the copy the previous swap started. No
// traffic moves: the swap's only effect on the load is the CPU and memory
// of starting and stopping a process, which the machine charges whoever
// deploys.
type swapper struct {
	Bin          string
	Interval     time.Duration
	HealthyAfter int

	prev *exec.Cmd // the copy the next swap stops
	// exited receives the exit of the copy start returned last: its
	// Wait runs from the start, to notice an early exit.
	exited     <-chan error
	prevExited <-chan error
}

// swap runs one swap and returns its window.
func (s *swapper) swap(ctx context.Context) (window, error) {
	w := window{Start: time.Now()}
	cmd, err := s.start(ctx)
	if err == nil {
		err = s.prevStop()
		s.prev, s.prevExited = cmd, s.exited
	}
	w.End = time.Now()
	return w, err
}

// start starts a copy and waits until it is healthy. A copy that exits
// before (another process took its port between the pick and its listen,
// say) is started again on another port, twice at most.
func (s *swapper) start(ctx context.Context) (*exec.Cmd, error) {
	var err error
	for range 3 {
		var cmd *exec.Cmd
		if cmd, err = s.startOnce(ctx); err == nil || !errors.Is(err, errExited) {
			return cmd, err
		}
	}
	return nil, err
}

// errExited marks a copy that exited before it was healthy.
var errExited = errors.New("exited before it was healthy")

// startOnce starts a copy on a free port and waits until it is healthy.
func (s *swapper) startOnce(ctx context.Context) (*exec.Cmd, error) {
	port, err := freeport.Pick()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Bin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	var stderr tail
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("control swap: start %s: %w", s.Bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// cutover's own check (health.Probe): a fresh connection, 2xx passes.
	deadline := time.Now().Add(20 * time.Second)
	for passes := 0; passes < s.HealthyAfter; {
		select {
		case werr := <-exited:
			return nil, fmt.Errorf("control swap: %s on port %d: %w (%v): %s", s.Bin, port, errExited, werr, stderr.String())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop(cmd, exited)
			return nil, fmt.Errorf("control swap: %s on port %d not healthy within 20s: %s", s.Bin, port, stderr.String())
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		if health.Probe(pctx, addr, "/") == nil {
			passes++
		} else {
			passes = 0
		}
		cancel()
		if passes < s.HealthyAfter {
			time.Sleep(s.Interval)
		}
	}
	s.exited = exited
	return cmd, nil
}

// tail keeps the last 2 KB written to it: a copy's stderr, for errors.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 2048; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// prevStop stops the copy of the previous swap, if any.
func (s *swapper) prevStop() error {
	if s.prev == nil {
		return nil
	}
	err := stop(s.prev, s.prevExited)
	s.prev, s.prevExited = nil, nil
	return err
}

// close stops the last copy.
func (s *swapper) close() error { return s.prevStop() }

// stop sends SIGTERM and waits for the exit, which exited receives
// (SIGKILL after 5s).
func stop(cmd *exec.Cmd, exited <-chan error) error {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("control swap: stop pid %d: %w", cmd.Process.Pid, err)
	}
	done := exited
	select {
	case <-done:
		return nil
	case <-time.After(5 * time.Second):
		cmd.Process.Kill() //nolint:errcheck // it is being killed because it did not stop
		<-done
		return fmt.Errorf("control swap: pid %d did not stop within 5s of SIGTERM", cmd.Process.Pid)
	}
}
