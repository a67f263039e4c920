// Package load puts an HTTP target under steady load with vegeta and keeps
// every result, so a deploy can be judged request by request: how many
// failed, the latency quantiles, and which app version answered each one
// (the X-App-Version header). `cutover demo`, the end-to-end tests and the
// benchmarks use it; it never runs inside the daemon.
package load

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Options configure a Generator.
type Options struct {
	// URL is requested with GET.
	URL string
	// Rate is requests per second in all. Default 200.
	Rate int
	// FreshShare is the share (0..1) of the rate sent on a new connection
	// per request; the rest reuse keep-alive connections. Default 0.
	FreshShare float64
	// Timeout of one request. Default 30s.
	Timeout time.Duration
	// MaxDuration bounds the run even if Stop is never called. Default 10m.
	MaxDuration time.Duration
	// VersionHeader names the response header that says which version
	// answered. Default "X-App-Version".
	VersionHeader string
	// Host, when set, is the Host header of every request (the URL's host
	// is still what is dialled): one proxy port, several apps.
	Host string
	// TLS is the client's TLS configuration for an https URL (its RootCAs
	// trusting the server's certificate). nil = vegeta's default.
	TLS *tls.Config
	// HTTP2 lets an https URL be requested over HTTP/2 when the server
	// offers it; false = HTTP/1.1 only. The share of new connections
	// (FreshShare) is on HTTP/1.1 always: one request per connection.
	HTTP2 bool
}

// Result is one request.
type Result struct {
	Start   time.Time
	End     time.Time
	Code    int
	Version string
	Err     string // transport error or non-2xx status text; "" when it succeeded
}

// Failed reports whether the request failed (transport error or not 2xx).
func (r Result) Failed() bool { return r.Err != "" }

// Generator runs the load until Stop.
type Generator struct {
	opts      Options
	attackers []*vegeta.Attacker
	wg        sync.WaitGroup

	mu      sync.Mutex
	results []Result
	marks   []mark
}

type mark struct {
	at   time.Time
	name string
}

// Start begins sending load. The first phase is named first.
func Start(opts Options, first string) *Generator {
	if opts.Rate <= 0 {
		opts.Rate = 200
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxDuration <= 0 {
		opts.MaxDuration = 10 * time.Minute
	}
	if opts.VersionHeader == "" {
		opts.VersionHeader = "X-App-Version"
	}
	g := &Generator{opts: opts, marks: []mark{{time.Now(), first}}}
	fresh := int(float64(opts.Rate)*opts.FreshShare + 0.5)
	g.attack(opts.Rate-fresh, true)
	g.attack(fresh, false)
	return g
}

func (g *Generator) attack(rate int, keepAlive bool) {
	if rate <= 0 {
		return
	}
	opts := []func(*vegeta.Attacker){vegeta.KeepAlive(keepAlive), vegeta.Timeout(g.opts.Timeout),
		vegeta.MaxBody(1 << 16), vegeta.Redirects(vegeta.NoFollow)}
	if g.opts.TLS != nil {
		opts = append(opts, vegeta.TLSConfig(g.opts.TLS.Clone()))
	}
	// HTTP/2 only on keep-alive connections: without keep-alive each
	// request is a new connection, which is what FreshShare measures.
	opts = append(opts, vegeta.HTTP2(g.opts.HTTP2 && keepAlive))
	a := vegeta.NewAttacker(opts...)
	g.attackers = append(g.attackers, a)
	target := vegeta.Target{Method: http.MethodGet, URL: g.opts.URL}
	if g.opts.Host != "" {
		target.Header = http.Header{"Host": {g.opts.Host}}
	}
	tr := vegeta.NewStaticTargeter(target)
	ch := a.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, g.opts.MaxDuration, "load")
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for r := range ch {
			res := Result{Start: r.Timestamp, End: r.End(), Code: int(r.Code), Err: r.Error}
			if r.Headers != nil {
				res.Version = r.Headers.Get(g.opts.VersionHeader)
			}
			if res.Err == "" && (r.Code < 200 || r.Code >= 300) {
				res.Err = fmt.Sprintf("status %d: %s", r.Code, strings.TrimSpace(string(r.Body)))
			}
			g.mu.Lock()
			g.results = append(g.results, res)
			g.mu.Unlock()
		}
	}()
}

// Mark starts a new phase: requests sent from now on count for it.
func (g *Generator) Mark(name string) {
	g.mu.Lock()
	g.marks = append(g.marks, mark{time.Now(), name})
	g.mu.Unlock()
}

// Count returns how many requests have finished so far and how many of
// them failed.
func (g *Generator) Count() (total, failed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.results {
		if r.Failed() {
			failed++
		}
	}
	return len(g.results), failed
}

// Stop ends the load, waits for requests in flight, and reports.
func (g *Generator) Stop() Report {
	for _, a := range g.attackers {
		a.Stop()
	}
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	sort.Slice(g.results, func(i, j int) bool { return g.results[i].Start.Before(g.results[j].Start) })
	return newReport(g.results, g.marks)
}
