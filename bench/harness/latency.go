package main

import (
	"context"
	"net"
	"net/http"
	"slices"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// hit is one request of a fixed-rate run.
type hit struct {
	Start   time.Time
	Latency time.Duration
	// Failed is a transport error or a status other than 2xx.
	Failed bool
}

// fixedRate sends GET url at rate requests per second, on keep-alive
// connections, until d has passed or ctx ends, and returns every request.
// vegeta paces the requests by the clock (open model), so a slow answer
// does not delay the next request and queueing shows in the latency.
func fixedRate(ctx context.Context, url string, rate int, d time.Duration) []hit {
	// vegeta's own transport, but one the harness can close: when a target
	// stalls, vegeta opens a connection for each request that cannot wait
	// (thousands in a storm), and left open they would count in the next
	// measurement of the target, such as its memory with idle connections.
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections,
		MaxConnsPerHost:     vegeta.DefaultMaxConnections,
	}
	defer tr.CloseIdleConnections()
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr}), // first: the options below set it up
		vegeta.KeepAlive(true),
		vegeta.Timeout(10*time.Second),
		vegeta.Workers(32),
		vegeta.Redirects(vegeta.NoFollow),
	)
	tgt := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url})
	res := atk.Attack(tgt, vegeta.Rate{Freq: rate, Per: time.Second}, d, "fixed-rate")
	// Room for at most a minute: d can be a generous upper bound (the
	// deploy scenario's is most of an hour), and a slice sized for it
	// would be hundreds of MB that this process's garbage collector scans
	// in full (hit holds a pointer, in time.Time) — a stall of the load
	// generator, measured as slow requests, at each of its collections.
	hits := make([]hit, 0, rate*int(min(d, time.Minute).Seconds())+16)
	stopped := false
	for {
		select {
		case r, ok := <-res:
			if !ok {
				return hits
			}
			hits = append(hits, hit{
				Start:   r.Timestamp,
				Latency: r.Latency,
				Failed:  r.Error != "" || r.Code < 200 || r.Code > 299,
			})
		case <-ctx.Done():
			if !stopped {
				// Stop ends the attack; the results channel then closes.
				atk.Stop()
				stopped = true
			}
		}
	}
}

// latencySummary condenses hits.
type latencySummary struct {
	Requests int
	Failed   int
	P50, P99 time.Duration
}

// summarize returns the count, failures and latency quantiles of hits.
func summarize(hits []hit) latencySummary {
	s := latencySummary{Requests: len(hits)}
	lat := make([]time.Duration, 0, len(hits))
	for _, h := range hits {
		if h.Failed {
			s.Failed++
		}
		lat = append(lat, h.Latency)
	}
	slices.Sort(lat)
	s.P50 = quantile(lat, 0.50)
	s.P99 = quantile(lat, 0.99)
	return s
}

// quantile returns the q-quantile (nearest rank) of sorted; 0 when empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}
