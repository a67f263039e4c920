package tcpproxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// Instance is one instance as the TCP ports see it.
type Instance struct {
	// ID is the instance's id, "<release>-<n>".
	ID string
	// Release is the release it runs.
	Release string
	// Number is n of its id: the stable order of "first".
	Number int
	// Ports are its loopback ports, by the port_env of each entry.
	Ports map[string]int
}

// Options configure Ports.
type Options struct {
	// Entries are the app's [[app.tcp]] tables, validated.
	Entries []config.TCP
	// Health gives the interval, timeout and streaks of TCP health checks.
	Health config.Health
	// HoldTimeout is how long a new connection that no instance takes is
	// held, tried again as the routing changes, before it is closed
	// (proxy.hold_timeout). 0 closes it at once.
	HoldTimeout time.Duration
	Logger      *slog.Logger
}

// Ports is the TCP ports of one app. Create it with New, give it its
// listeners with Serve, and Close it.
type Ports struct {
	log     *slog.Logger
	health  config.Health
	hold    time.Duration
	entries []*entry
	done    chan struct{} // closed by Close: held connections give up

	mu      sync.Mutex           // guards the fields below and table rebuilds
	insts   map[string]*instInfo // by instance id
	weights map[string]int       // releases that take new connections
	closed  bool
}

// instInfo is what Ports keeps of an instance besides its backends.
type instInfo struct {
	Instance
	httpHealthy bool
	draining    bool
}

// New returns Ports for opts.Entries, not listening yet.
func New(opts Options) *Ports {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Ports{
		log:    log.With("component", "tcp"),
		health: opts.Health,
		hold:   opts.HoldTimeout,
		done:   make(chan struct{}),
		insts:  map[string]*instInfo{},
	}
	for _, c := range opts.Entries {
		e := &entry{p: p, cfg: c, backends: map[string]*backend{}}
		e.publish(nil)
		p.entries = append(p.entries, e)
	}
	return p
}

// Entries returns the configuration of each entry, in order.
func (p *Ports) Entries() []config.TCP {
	out := make([]config.TCP, len(p.entries))
	for i, e := range p.entries {
		out[i] = e.cfg
	}
	return out
}

// Listen opens a listener per entry on its listen address. On an error
// the ones opened are closed.
func Listen(entries []config.TCP) ([]net.Listener, error) {
	var lns []net.Listener
	for i, c := range entries {
		ln, err := net.Listen("tcp", c.Listen)
		if err != nil {
			for _, l := range lns {
				l.Close() //nolint:errcheck // giving up; the first error is the one to report
			}
			return nil, fmt.Errorf("listen for tcp entry %d on %s: %w", i+1, c.Listen, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// Serve takes connections on lns, one listener per entry in order (nil:
// that entry does not listen), until Close. It returns at once; the
// accept loops run until Close, which closes the listeners.
func (p *Ports) Serve(lns []net.Listener) error {
	if len(lns) != len(p.entries) {
		return fmt.Errorf("tcp: %d listeners for %d entries", len(lns), len(p.entries))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("tcp: closed")
	}
	for i, e := range p.entries {
		if lns[i] == nil {
			continue // not listening: said by whoever could not open it
		}
		e.ln = lns[i]
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.accept()
		}()
	}
	return nil
}

// Addr returns the address entry i listens on, nil before Serve.
func (p *Ports) Addr(i int) net.Addr {
	if ln := p.entries[i].ln; ln != nil {
		return ln.Addr()
	}
	return nil
}

// Add makes in's ports known (its process runs): it may take connections
// once Route lets its release and, for entries with health "tcp", once a
// first connect to its port succeeded.
func (p *Ports) Add(in Instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	info := &instInfo{Instance: in}
	if old := p.insts[in.ID]; old != nil {
		info.httpHealthy = old.httpHealthy
	}
	p.insts[in.ID] = info
	for _, e := range p.entries {
		port := in.Ports[e.cfg.PortEnv]
		if port == 0 {
			continue
		}
		e.addBackend(in, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), info.httpHealthy)
	}
	p.rebuildLocked()
}

// Remove forgets an instance that is about to stop: it takes no new
// connection, and those still open to it are closed.
func (p *Ports) Remove(id string) {
	p.mu.Lock()
	delete(p.insts, id)
	var gone []*backend
	for _, e := range p.entries {
		if b := e.removeBackend(id); b != nil {
			gone = append(gone, b)
		}
	}
	p.rebuildLocked()
	p.mu.Unlock()
	for _, b := range gone {
		b.stop()
	}
}

// SetHTTPHealthy tells the instance's HTTP health, which entries with
// health "http" follow.
func (p *Ports) SetHTTPHealthy(id string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info := p.insts[id]
	if info == nil {
		return
	}
	info.httpHealthy = ok
	for _, e := range p.entries {
		if b := e.backendOf(id); b != nil && e.cfg.Health == "http" {
			b.healthy.Store(ok)
		}
	}
}

// Down says the instance's process exited (a crash): every entry takes
// it out at once; entries with health "tcp" take it back once connects
// to its port succeed again.
func (p *Ports) Down(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.entries {
		if b := e.backendOf(id); b != nil {
			b.down()
		}
	}
}

// Route sets the releases that take new connections: the one with the
// most weight (the newer name on a tie, as release ids sort by time)
// first, then the others with weight > 0, each by instance number. It is
// given the HTTP weights, so TCP follows HTTP's switch. nil routes
// nothing.
func (p *Ports) Route(weights map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.weights = map[string]int{}
	for r, w := range weights {
		if w > 0 && r != "" {
			p.weights[r] = w
		}
	}
	p.rebuildLocked()
}

// releasesLocked returns the routed releases in the order they take
// connections.
func (p *Ports) releasesLocked() []string {
	rs := make([]string, 0, len(p.weights))
	for r := range p.weights {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b string) int {
		if c := cmp.Compare(p.weights[b], p.weights[a]); c != 0 {
			return c
		}
		return cmp.Compare(b, a)
	})
	return rs
}

// rebuildLocked publishes each entry's table anew.
func (p *Ports) rebuildLocked() {
	rank := map[string]int{}
	for i, r := range p.releasesLocked() {
		rank[r] = i + 1
	}
	for _, e := range p.entries {
		var bs []*backend
		for _, b := range e.backends {
			info := p.insts[b.id]
			if rank[b.release] == 0 || info == nil || info.draining {
				continue
			}
			bs = append(bs, b)
		}
		slices.SortFunc(bs, func(a, b *backend) int {
			if c := cmp.Compare(rank[a.release], rank[b.release]); c != 0 {
				return c
			}
			return cmp.Compare(a.number, b.number)
		})
		e.publish(bs)
	}
}

// StopAccepting closes the listeners: new connections wait in the
// socket's backlog for another process accepting from it (the next
// daemon); the open ones go on. Shutdown and Close do it too.
func (p *Ports) StopAccepting() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.entries {
		if e.ln != nil {
			e.ln.Close() //nolint:errcheck // closing to stop the accept loop
		}
	}
}

// Close stops taking connections and checking health, and closes every
// connection still open; it returns once their goroutines ended.
func (p *Ports) Close() {
	p.mu.Lock()
	if !p.closed {
		close(p.done)
	}
	p.closed = true
	var all []*backend
	for _, e := range p.entries {
		for _, b := range e.backends {
			all = append(all, b)
		}
		e.backends = map[string]*backend{}
		e.publish(nil)
		if e.ln != nil {
			e.ln.Close() //nolint:errcheck // closing to stop the accept loop
		}
	}
	p.mu.Unlock()
	for _, b := range all {
		b.stop()
	}
	for _, e := range p.entries {
		e.wg.Wait()
	}
}

// Shutdown stops taking connections, waits for those open to end, each up
// to its own entry's drain_timeout (counted from the call) or until ctx
// ends, closes those still open then, and Closes. The daemon does it
// when it exits: during an upgrade from the moment the next daemon takes
// the new connections from the same sockets, so that a connection open
// through the old one gets its drain_timeout, as a deploy gives a
// retiring release's. The result counts, over every entry, the
// connections that ended by themselves and those cut.
func (p *Ports) Shutdown(ctx context.Context) DrainResult {
	p.mu.Lock()
	var bs []*backend
	for _, e := range p.entries {
		if e.ln != nil {
			e.ln.Close() //nolint:errcheck // closing to stop the accept loop
		}
		for _, b := range e.backends {
			bs = append(bs, b)
		}
	}
	p.mu.Unlock()
	var mu sync.Mutex
	var res DrainResult
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() {
			open := b.open()
			b.waitIdle(ctx)
			cut := b.cut()
			mu.Lock()
			res.Cut += cut
			res.Finished += max(open-cut, 0)
			mu.Unlock()
		})
	}
	wg.Wait()
	p.Close()
	return res
}

// LongestDrain is the longest drain_timeout of the entries: how long
// Shutdown may take.
func (p *Ports) LongestDrain() time.Duration {
	var d time.Duration
	for _, e := range p.entries {
		d = max(d, e.cfg.DrainTimeout.Duration)
	}
	return d
}

// checkInterval and friends are app.health's, with the health package's
// defaults for a zero config (tests).
func (p *Ports) checkTiming() (interval, timeout time.Duration, rise, fall int) {
	h := p.health
	interval, timeout, rise, fall = h.Interval.Duration, h.Timeout.Duration, h.HealthyAfter, h.UnhealthyAfter
	if interval <= 0 {
		interval = time.Second
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return interval, timeout, max(rise, 1), max(fall, 1)
}
