package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
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
}

// swap runs one swap and returns its window.
func (s *swapper) swap(ctx context.Context) (window, error) {
	w := window{Start: time.Now()}
	cmd, err := s.start(ctx)
	if err == nil {
		err = s.prevStop()
		s.prev = cmd
	}
	w.End = time.Now()
	return w, err
}

// start starts a copy and waits until it is healthy.
func (s *swapper) start(ctx context.Context) (*exec.Cmd, error) {
	port, err := freeport.Pick()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Bin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("control swap: start %s: %w", s.Bin, err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// cutover's own check: a fresh connection, 2xx or 3xx passes.
	deadline := time.Now().Add(20 * time.Second)
	for passes := 0; passes < s.HealthyAfter; {
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop(cmd)
			return nil, fmt.Errorf("control swap: %s on port %d not healthy within 20s", s.Bin, port)
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
	return cmd, nil
}

// prevStop stops the copy of the previous swap, if any.
func (s *swapper) prevStop() error {
	if s.prev == nil {
		return nil
	}
	err := stop(s.prev)
	s.prev = nil
	return err
}

// close stops the last copy.
func (s *swapper) close() error { return s.prevStop() }

// stop sends SIGTERM and waits for the exit (SIGKILL after 5s).
func stop(cmd *exec.Cmd) error {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("control swap: stop pid %d: %w", cmd.Process.Pid, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(5 * time.Second):
		cmd.Process.Kill() //nolint:errcheck // it is being killed because it did not stop
		<-done
		return fmt.Errorf("control swap: pid %d did not stop within 5s of SIGTERM", cmd.Process.Pid)
	}
}
