package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says how to check an instance. The zero value of each field means
// its default.
type Config struct {
	// Path is requested with GET; it starts with "/". Default "/". Not
	// used with GRPC.
	Path string
	// GRPC checks with the gRPC health protocol (ProbeGRPC) instead of a
	// GET of Path. Default false.
	GRPC bool
	// GRPCService is the service the gRPC check asks about; "" = the
	// server as a whole. Only with GRPC.
	GRPCService string
	// Interval between checks in Run. Default 1s.
	Interval time.Duration
	// Timeout of one check, connection included. Default 2s.
	Timeout time.Duration
	// HealthyAfter consecutive passes make an unhealthy instance healthy.
	// Default 2.
	HealthyAfter int
	// UnhealthyAfter consecutive failures make a healthy instance
	// unhealthy. Default 3.
	UnhealthyAfter int
	// StartHealthy makes the checker start with a healthy verdict (and
	// Ready closed), for an instance known to be serving — one a restarted
	// daemon re-adopts after a passing probe. It then leaves rotation only
	// after UnhealthyAfter failures, like any healthy instance. Default
	// false: a new instance must pass HealthyAfter checks first.
	StartHealthy bool
	// RestartAfter consecutive failures of an instance that was healthy
	// once (since this Checker started) call OnHung, once: it was serving
	// and stopped answering, and leaving rotation (UnhealthyAfter) did not
	// bring it back. It should be at least UnhealthyAfter, so that a
	// slow-but-alive instance leaves rotation, and can recover, before it
	// is killed. 0 = never.
	RestartAfter int
	// OnHung, if not nil, is called once from the round whose failure
	// makes RestartAfter in a row, with that count and the round's error.
	// An instance that never became healthy is not reported: booting has
	// its own deadline.
	OnHung func(fails int, err error)
	// Counts, if not nil, counts every round's result; an instance keeps
	// one across the checkers that replace each other after crashes.
	Counts *Counts
	// OnFirstPass, if not nil, is called once, after the first check that
	// passes while the instance is not yet healthy: it answers, but has
	// HealthyAfter-1 checks to go. Deploy opens the proxy's connections to
	// the instance then, a check interval ahead of the switch.
	OnFirstPass func()
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.HealthyAfter <= 0 {
		cfg.HealthyAfter = 2
	}
	if cfg.UnhealthyAfter <= 0 {
		cfg.UnhealthyAfter = 3
	}
	return cfg
}

// StatusError is the error of a check answered with a status other than
// 2xx.
type StatusError struct {
	URL  string // the URL requested
	Code int    // the HTTP status of the answer
	// Location is the answer's Location header, for a redirect: a path
	// that redirects (to a login page, say) is most often a health path
	// the app does not have, which a check that followed redirects, or
	// took a 3xx as healthy, would let pass.
	Location string
}

// Error says the URL and the status, e.g. "GET http://127.0.0.1:4001/:
// status 503 Service Unavailable"; for a redirect, where it points and
// what to check.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: status %d %s", e.URL, e.Code, http.StatusText(e.Code))
	if e.Code >= 300 && e.Code < 400 {
		loc := e.Location
		if loc == "" {
			loc = "(no Location)"
		}
		msg += fmt.Sprintf(" → %s: a health path must answer 2xx itself; is app.health.path misspelt?", loc)
	}
	return msg
}

// Probe does one GET of http://addr+path, on a connection of its own that
// it closes after the answer, and returns nil if the answer is 2xx, else
// an error saying the status (a *StatusError) or why there was no answer.
// A redirect fails the check and is not followed: following it could test
// another server, or loop, and an app that redirects unknown paths (to its
// login page, say) would pass a check of a misspelt path. ctx bounds the whole check, connection included.
//
// A fresh connection per check: a kept-alive one can be closed by the
// instance between checks and fail a check of an instance that is fine,
// and a check must also find out that new connections are accepted. The
// request is written by hand rather than through net/http's client, whose
// transport starts two goroutines and allocates its buffers for each new
// connection: checks run all day, and during a deploy every interval.
func Probe(ctx context.Context, addr, path string) error {
	url := "http://" + addr + path
	fail := func(err error) error {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("no answer in time: %w", context.Cause(ctx))
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The connection's deadline is ctx's, and may pass a moment
			// before ctx says so.
			err = fmt.Errorf("no answer in time: %w", context.DeadlineExceeded)
		}
		return fmt.Errorf("health check: GET %s: %w", url, err)
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n") {
		return fmt.Errorf("health check: path %q: must start with / and hold no spaces or line breaks", path)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail(err)
	}
	defer conn.Close() //nolint:errcheck // read-only use; the answer is in
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl) //nolint:errcheck // a fresh TCP connection takes a deadline
	}
	// A ctx cancelled before its deadline ends the exchange too.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) }) //nolint:errcheck // as above
	defer stop()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: cutover-health\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1024), nil)
	if err != nil {
		return fail(err)
	}
	// Read a little of the body so that the instance's write does not fail;
	// the status decides, not the body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close() //nolint:errcheck // as above
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return &StatusError{URL: url, Code: resp.StatusCode, Location: resp.Header.Get("Location")}
	}
	return nil
}

// Check does one check of the instance at addr as cfg says: ProbeGRPC
// with cfg.GRPC, else Probe of cfg.Path.
func Check(ctx context.Context, addr string, cfg Config) error {
	if cfg.GRPC {
		return ProbeGRPC(ctx, addr, cfg.GRPCService)
	}
	path := cfg.Path
	if path == "" {
		path = "/"
	}
	return Probe(ctx, addr, path)
}

// Counts are the health checks of an instance that passed and failed,
// for metrics.
type Counts struct {
	Passed, Failed atomic.Uint64
}

// Checker checks one instance and keeps its verdict. It starts unhealthy.
// Its methods are safe for concurrent use.
type Checker struct {
	cfg      Config
	addr     string
	onChange func(healthy bool, err error)

	ready     chan struct{} // closed the first time the instance is healthy
	readyOnce sync.Once
	firstPass sync.Once // runs cfg.OnFirstPass
	hung      sync.Once // runs cfg.OnHung

	round sync.Mutex // one round at a time, so onChange calls come in order

	mu      sync.Mutex
	healthy bool
	passes  int   // consecutive passes, 0 after a failure
	fails   int   // consecutive failures, 0 after a pass
	lastErr error // of the latest round; nil if it passed or none ran
}

// NewChecker returns a Checker of the instance listening on addr
// (host:port), with cfg's defaults filled. onChange, if not nil, is called
// on each transition, with the verdict and the error of the round that
// caused it (nil when becoming healthy); calls come one at a time, in order.
func NewChecker(cfg Config, addr string, onChange func(healthy bool, err error)) *Checker {
	cfg = cfg.withDefaults()
	c := &Checker{
		cfg:      cfg,
		addr:     addr,
		onChange: onChange,
		ready:    make(chan struct{}),
	}
	if cfg.StartHealthy {
		c.healthy = true
		c.readyOnce.Do(func() { close(c.ready) })
	}
	return c
}

// Run checks the instance at once and then every Interval until ctx is
// done, then returns nil.
func (c *Checker) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.Round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round runs one check now and updates the verdict. A round cut short by
// ctx ending is not counted.
func (c *Checker) Round(ctx context.Context) {
	c.round.Lock()
	defer c.round.Unlock()
	pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	err := Check(pctx, c.addr, c.cfg)
	cancel()
	if ctx.Err() != nil {
		return // the caller gave up; this says nothing about the instance
	}

	if n := c.cfg.Counts; n != nil {
		if err == nil {
			n.Passed.Add(1)
		} else {
			n.Failed.Add(1)
		}
	}
	c.mu.Lock()
	c.lastErr = err
	changed := false
	if err == nil {
		c.passes++
		c.fails = 0
		if !c.healthy && c.passes >= c.cfg.HealthyAfter {
			c.healthy, changed = true, true
		}
	} else {
		c.fails++
		c.passes = 0
		if c.healthy && c.fails >= c.cfg.UnhealthyAfter {
			c.healthy, changed = false, true
		}
	}
	healthy := c.healthy
	passedUnhealthy := err == nil && (!healthy || changed)
	fails := c.fails
	hung := c.cfg.RestartAfter > 0 && fails >= c.cfg.RestartAfter && c.wasHealthy()
	c.mu.Unlock()

	if hung && c.cfg.OnHung != nil {
		c.hung.Do(func() { c.cfg.OnHung(fails, err) })
	}

	if passedUnhealthy && c.cfg.OnFirstPass != nil {
		c.firstPass.Do(c.cfg.OnFirstPass)
	}
	if !changed {
		return
	}
	if healthy {
		c.readyOnce.Do(func() { close(c.ready) })
	}
	if c.onChange != nil {
		c.onChange(healthy, err)
	}
}

// wasHealthy reports whether the instance has been healthy since the
// Checker started (Ready is closed).
func (c *Checker) wasHealthy() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// Healthy reports the current verdict.
func (c *Checker) Healthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.healthy
}

// LastError returns the error of the latest round: nil if it passed or if
// none has run.
func (c *Checker) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Streak returns the passes in a row so far and the error of the latest
// round: (0, nil) before any round ran, (n, nil) after n passes in a row,
// (0, err) after a failure.
func (c *Checker) Streak() (passes int, lastErr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.passes, c.lastErr
}

// Ready returns a channel closed the first time the instance becomes
// healthy. It stays closed if the instance later becomes unhealthy.
func (c *Checker) Ready() <-chan struct{} {
	return c.ready
}
