package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/keeper"
	"github.com/cutover/cutover/internal/tcpproxy"
	"github.com/cutover/cutover/internal/traffic"
)

// tcpTraffic is an app's traffic seam with its TCP ports following it:
// every change of the HTTP weights (a switch, a canary step, a rollback,
// the end of a hold) routes new TCP connections the same way, and the
// drain of a release drains its TCP connections alongside its requests,
// so the deploy engine stops its instances only after both.
type tcpTraffic struct {
	deploy.Traffic
	ports *tcpproxy.Ports
	log   *slog.Logger
}

func (t *tcpTraffic) route() { t.ports.Route(t.Traffic.Weights()) }

// SetActive switches HTTP, then TCP.
func (t *tcpTraffic) SetActive(release string) {
	t.Traffic.SetActive(release)
	t.route()
}

// SetWeights sets HTTP's weights, then routes TCP by them.
func (t *tcpTraffic) SetWeights(w map[string]int) {
	t.Traffic.SetWeights(w)
	t.route()
}

// Unhold ends a hold, then routes TCP by the weights it left.
func (t *tcpTraffic) Unhold(release string) traffic.HoldReport {
	rep := t.Traffic.Unhold(release)
	t.route()
	return rep
}

// FailHold refuses requests, then routes TCP by the weights it left.
func (t *tcpTraffic) FailHold(why string) traffic.HoldReport {
	rep := t.Traffic.FailHold(why)
	t.route()
	return rep
}

// WaitRequests waits for release's requests (within ctx, whose deadline
// is proxy.drain_timeout) and, meanwhile, for its open TCP connections to
// end, each up to its port's drain_timeout — not ctx's deadline; an
// abort (ctx cancelled) ends both waits. A stop-first deploy's hold calls
// it before it stops the instances, which cuts what is still open.
func (t *tcpTraffic) WaitRequests(ctx context.Context, release string) traffic.InFlight {
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	defer stop()
	done := make(chan int, 1)
	go func() { done <- t.ports.WaitRelease(tctx, release) }()
	r := t.Traffic.WaitRequests(ctx, release)
	if left := <-done; left > 0 {
		t.log.Info("tcp connections still open after their drain_timeout", "release", release, "open", left)
	}
	return r
}

// Drain drains release's requests and its TCP connections at once. The
// TCP connections get each port's own drain_timeout, not ctx's deadline
// (proxy.drain_timeout); a ctx already ended (a drain that cuts at once)
// cuts them at once too.
func (t *tcpTraffic) Drain(ctx context.Context, release string, pace time.Duration) traffic.DrainResult {
	tctx := ctx
	if ctx.Err() == nil {
		tctx = context.WithoutCancel(ctx)
	}
	done := make(chan tcpproxy.DrainResult, 1)
	go func() { done <- t.ports.DrainRelease(tctx, release) }()
	r := t.Traffic.Drain(ctx, release, pace)
	tr := <-done
	if tr.Finished+tr.Cut > 0 {
		t.log.Info("tcp connections drained", "release", release, "finished", tr.Finished, "cut", tr.Cut)
	}
	r.Finished += tr.Finished
	r.Cut += tr.Cut
	return r
}

// openTCP opens the listeners of every unit's TCP ports: the sockets the
// keeper passed (named keeper.TCPSocketName), else new ones; under a
// keeper a port it did not pass (added to the file since `cutover serve`
// started) is left out with a warning, as proxy.preview_listen is. On an
// error, what was opened is closed.
func openTCP(units []*unit, inherited map[string]net.Listener, underKeeper bool, cfgPath string, log *slog.Logger) ([][]net.Listener, error) {
	out := make([][]net.Listener, len(units))
	fail := func(err error) ([][]net.Listener, error) {
		closeTCPListeners(out)
		return nil, err
	}
	for i, u := range units {
		if u.tcp == nil {
			continue
		}
		for j, e := range u.tcp.Entries() {
			ln := inherited[keeper.TCPSocketName(e.Listen)]
			switch {
			case ln != nil:
			case underKeeper:
				log.Warn("a [[app.tcp]] port was added after `cutover serve` started: restart `cutover serve` to listen on it",
					"app", u.name, "listen", e.Listen, "config", cfgPath)
			default:
				var err error
				if ln, err = net.Listen("tcp", e.Listen); err != nil {
					return fail(fmt.Errorf("app %s: tcp listen on %s ([[app.tcp]] %d in %s): %w", u.name, e.Listen, j+1, cfgPath, err))
				}
			}
			out[i] = append(out[i], ln)
		}
	}
	return out, nil
}

// closeTCPListeners closes listeners openTCP returned.
func closeTCPListeners(lns [][]net.Listener) {
	for _, l := range lns {
		for _, ln := range l {
			if ln != nil {
				ln.Close() //nolint:errcheck // giving up on start
			}
		}
	}
}

// shutdownTCP stops the TCP ports of units once handover fires (at once
// for a nil one) and returns a channel closed when every open connection
// ended or was cut, each at its own port's drain_timeout counted from
// then, or when ctx ended (see tcpproxy.Ports.Shutdown).
//
// During an upgrade (or a handover to the next `cutover serve` under
// socket activation) the next daemon takes the new connections from the
// same sockets; a connection open through this one is a transfer that
// no successor can carry on (an upload, an SSH session), so it gets its
// drain_timeout, as a deploy gives a retiring release's connections, and
// the caller's ctx does not bound it: the daemon's own shutdown deadline
// (successorWait plus 10 s, which bounds its HTTP requests) used to cut
// them about 20 s after the handover whatever drain_timeout said. The
// keeper waits for it (longestTCPDrain, announced with "released").
func shutdownTCP(ctx context.Context, units []*unit, handover <-chan struct{}, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if handover != nil {
			<-handover
		}
		var wg sync.WaitGroup
		for _, u := range units {
			if u.tcp == nil {
				continue
			}
			wg.Go(func() {
				if d := u.tcp.LongestDrain(); d > 0 {
					log.Info("tcp ports: letting open connections end", "app", u.name, "for_at_most", d)
				}
				r := u.tcp.Shutdown(ctx)
				log.Info("tcp ports closed", "app", u.name, "finished", r.Finished, "cut", r.Cut)
			})
		}
		wg.Wait()
	}()
	return done
}

// longestTCPDrain is the longest drain_timeout of the TCP ports of units:
// how long, beyond its HTTP shutdown, the daemon may take to exit after a
// handover. It goes to the keeper with "released", so that the keeper's
// SIGKILL of an old daemon (after keeper's stop grace) comes only after.
func longestTCPDrain(units []*unit) time.Duration {
	var d time.Duration
	for _, u := range units {
		if u.tcp != nil {
			d = max(d, u.tcp.LongestDrain())
		}
	}
	return d
}
