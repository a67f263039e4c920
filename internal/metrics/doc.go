// Package metrics exposes cutover's own numbers to Prometheus, on
// [metrics] listen at /metrics, in the text format client_golang writes.
//
// Collector reads, at scrape time, what the parts of the daemon already
// count: each app's proxy (proxy.Proxy.Metrics: requests by status class,
// the request duration histogram, in flight, held requests and their
// wait, retries, upstream errors, weights), its fleet (instances, their
// state, health and restarts, health checks passed and failed) and its
// deploy engine (the deploy under way: step, strategy step). The request
// path pays nothing for a scrape and nothing new where a counter already
// existed: what it had to add are atomic counters of its release (see
// proxy's metrics.go), with no lock, allocation or map lookup per
// request. Series are per app and release (and instance): no label takes
// a path or anything a client chooses, and a release the proxy forgets
// (retired WindowSpan ago, see proxy.Proxy.Stats) leaves the output, so
// months of deploys do not grow it.
//
// What nothing counted before — finished deploys by outcome, and how
// long each step took — is counted here, by Deploys, from the engine's
// events (deploy.Options.Observe); those counters live as long as the
// daemon, across engines.
//
// Certificates' expiry comes from a CertSource, registered only when the
// daemon has one (the TLS listener's certificates).
//
// Names follow Prometheus's conventions (cutover_ prefix, base units,
// _total for counters, _seconds for durations) and pass promlint, the
// linter of `promtool check metrics` (TestLint). docs/observability.md
// has the reference table.
package metrics
