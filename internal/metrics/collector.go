package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/proxy"
)

// App is what Collector reads of one app at scrape time.
type App struct {
	// Name is the app's name, the app label of its series.
	Name string
	// Proxy is the app's proxy (*proxy.Proxy).
	Proxy interface{ Metrics() proxy.Metrics }
	// Engine is the app's deploy engine (*deploy.Engine); nil = no
	// instance or deploy series for the app.
	Engine Engine
}

// Engine is what Collector reads of a deploy engine.
type Engine interface {
	// Instances reports the app's instances.
	Instances() []instance.Status
	// Progress reports the deploy under way, nil when none.
	Progress() *deploy.Progress
}

// Collector is the prometheus.Collector of cutover's apps: it reads each
// app's numbers when scraped (see the package documentation).
type Collector struct {
	apps func() []App
}

// NewCollector returns a Collector of the apps that apps returns, called
// at every scrape (the daemon's engines may be replaced while it runs).
func NewCollector(apps func() []App) *Collector {
	return &Collector{apps: apps}
}

var (
	lAppRelease  = []string{"app", "release"}
	lAppInstance = []string{"app", "release", "instance"}

	descRequests = prometheus.NewDesc("cutover_http_requests_total",
		"Requests answered on behalf of a release (by its app or by cutover's 502/504 for it), by status class.",
		[]string{"app", "release", "code"}, nil)
	descDuration = prometheus.NewDesc("cutover_http_request_duration_seconds",
		"Time from cutover sending a request to an instance to the response headers, retries and the wait for an instance included.",
		lAppRelease, nil)
	descInFlight = prometheus.NewDesc("cutover_http_requests_in_flight",
		"Requests, streams and websockets of a release under way.",
		lAppRelease, nil)
	descHeld = prometheus.NewDesc("cutover_http_held_requests_total",
		"Requests that waited for a healthy instance (or in a held switch) before reaching a release.",
		lAppRelease, nil)
	descHeldTime = prometheus.NewDesc("cutover_http_held_seconds_total",
		"Time the held requests of a release waited, in all.",
		lAppRelease, nil)
	descUnserved = prometheus.NewDesc("cutover_http_unserved_requests_total",
		"Requests cutover answered itself without a release: 503 after holding, refusals of the preview listener.",
		[]string{"app"}, nil)
	descRetries = prometheus.NewDesc("cutover_upstream_retries_total",
		"Requests sent again to an instance after an attempt on the release failed.",
		lAppRelease, nil)
	descConnectErrors = prometheus.NewDesc("cutover_upstream_connect_errors_total",
		"Connections to an instance of the release that could not be opened (refused, timed out).",
		lAppRelease, nil)
	descUpstreamErrors = prometheus.NewDesc("cutover_upstream_errors_total",
		"Failed upstream attempts: connect errors, resets, timeouts, bodies cut short.",
		lAppRelease, nil)
	descWeight = prometheus.NewDesc("cutover_release_weight_ratio",
		"The release's share of new requests, 0 to 1.",
		lAppRelease, nil)

	descUp = prometheus.NewDesc("cutover_instance_up",
		"1 when the instance's process runs, 0 when it is starting, restarting or stopping.",
		lAppInstance, nil)
	descHealthy = prometheus.NewDesc("cutover_instance_healthy",
		"1 when the instance passes its health checks (it is in rotation), else 0.",
		lAppInstance, nil)
	descRestarts = prometheus.NewDesc("cutover_instance_restarts_total",
		"Times the instance's process was restarted after it crashed or hung.",
		lAppInstance, nil)
	descChecks = prometheus.NewDesc("cutover_instance_health_checks_total",
		"Health checks of the instance since the daemon started, by result (pass, fail).",
		[]string{"app", "release", "instance", "result"}, nil)

	descDeployRunning = prometheus.NewDesc("cutover_deploy_in_progress",
		"1 while a deploy or rollback of the app runs, with its kind, release, strategy and step.",
		[]string{"app", "kind", "release", "strategy", "step"}, nil)
	descShiftStep = prometheus.NewDesc("cutover_deploy_strategy_step",
		"The step (from 1) the canary or rolling shift of the deploy under way has reached; absent before the shift.",
		lAppRelease, nil)
	descShiftSteps = prometheus.NewDesc("cutover_deploy_strategy_steps",
		"The number of steps of the canary or rolling shift under way.",
		lAppRelease, nil)
)

// Describe sends the descriptions of every series Collect may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descDuration, descInFlight, descHeld, descHeldTime,
		descUnserved, descRetries, descConnectErrors, descUpstreamErrors, descWeight,
		descUp, descHealthy, descRestarts, descChecks, descDeployRunning, descShiftStep, descShiftSteps} {
		ch <- d
	}
}

// statusClass is the code label of each status class index of
// proxy.ReleaseMetrics.Status.
var statusClass = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// durationBounds are proxy.DurationBounds in seconds.
var durationBounds = func() []float64 {
	b := make([]float64, len(proxy.DurationBounds))
	for i, d := range proxy.DurationBounds {
		b[i] = d.Seconds()
	}
	return b
}()

// Collect reads every app's numbers now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.apps() {
		if a.Proxy != nil {
			collectProxy(ch, a.Name, a.Proxy.Metrics())
		}
		if a.Engine != nil {
			collectEngine(ch, a.Name, a.Engine)
		}
	}
}

func collectProxy(ch chan<- prometheus.Metric, app string, m proxy.Metrics) {
	ch <- prometheus.MustNewConstMetric(descUnserved, prometheus.CounterValue, float64(m.Unserved), app)
	total := 0
	for _, r := range m.Releases {
		total += r.Weight
	}
	for _, r := range m.Releases {
		for class, n := range r.Status {
			if n > 0 || (class >= 2 && class <= 5) {
				ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), app, r.Release, statusClass[class])
			}
		}
		buckets := make(map[float64]uint64, len(durationBounds))
		var count uint64
		for i, n := range r.Duration {
			count += n
			if i < len(durationBounds) {
				buckets[durationBounds[i]] = count
			}
		}
		ch <- prometheus.MustNewConstHistogram(descDuration, count, r.DurationSum.Seconds(), buckets, app, r.Release)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(r.InFlight), app, r.Release)
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.CounterValue, float64(r.Held), app, r.Release)
		ch <- prometheus.MustNewConstMetric(descHeldTime, prometheus.CounterValue, r.HeldTime.Seconds(), app, r.Release)
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(r.Retries), app, r.Release)
		ch <- prometheus.MustNewConstMetric(descConnectErrors, prometheus.CounterValue, float64(r.ConnectErrors), app, r.Release)
		ch <- prometheus.MustNewConstMetric(descUpstreamErrors, prometheus.CounterValue, float64(r.UpstreamErrors), app, r.Release)
		share := 0.0
		if total > 0 {
			share = float64(r.Weight) / float64(total)
		}
		ch <- prometheus.MustNewConstMetric(descWeight, prometheus.GaugeValue, share, app, r.Release)
	}
}

func collectEngine(ch chan<- prometheus.Metric, app string, e Engine) {
	for _, in := range e.Instances() {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, boolValue(in.State == "running"), app, in.Release, in.ID)
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, boolValue(in.Healthy), app, in.Release, in.ID)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(in.Restarts), app, in.Release, in.ID)
		ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(in.ChecksPassed), app, in.Release, in.ID, "pass")
		ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(in.ChecksFailed), app, in.Release, in.ID, "fail")
	}
	p := e.Progress()
	if p == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descDeployRunning, prometheus.GaugeValue, 1, app, p.Kind, p.Release, p.Strategy, p.Step)
	if p.ShiftSteps > 0 {
		ch <- prometheus.MustNewConstMetric(descShiftStep, prometheus.GaugeValue, float64(p.ShiftStep), app, p.Release)
		ch <- prometheus.MustNewConstMetric(descShiftSteps, prometheus.GaugeValue, float64(p.ShiftSteps), app, p.Release)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Deploys counts finished deploys by outcome and the duration of their
// steps, from the engines' events: nothing else counts them.
type Deploys struct {
	results *prometheus.CounterVec
	steps   *prometheus.HistogramVec
}

// StepBuckets are the bounds of the step duration histogram, in seconds:
// a lock takes milliseconds, a build or a canary minutes.
var StepBuckets = []float64{0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800}

// NewDeploys returns an empty Deploys.
func NewDeploys() *Deploys {
	return &Deploys{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_deploys_total",
			Help: "Finished deploys and rollbacks, by kind and outcome (ok, failed, aborted, refused, config).",
		}, []string{"app", "kind", "outcome"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cutover_deploy_step_duration_seconds",
			Help:    "How long each finished step of a deploy took, by step and status (ok, failed).",
			Buckets: StepBuckets,
		}, []string{"app", "step", "status"}),
	}
}

// Observer returns the function that counts app's deploy events, for
// deploy.Options.Observe.
func (d *Deploys) Observer(app string) func(kind string, ev deploy.Event) {
	return func(kind string, ev deploy.Event) {
		switch {
		case ev.Type == "step" && (ev.Status == "ok" || ev.Status == "failed"):
			d.steps.WithLabelValues(app, ev.Step.String(), ev.Status).Observe(ev.DurationMS / 1000)
		case ev.Type == "result":
			outcome := "ok"
			if !ev.OK {
				outcome = ev.ErrorKind
			}
			d.results.WithLabelValues(app, kind, outcome).Inc()
		}
	}
}

// Describe describes the deploy series.
func (d *Deploys) Describe(ch chan<- *prometheus.Desc) {
	d.results.Describe(ch)
	d.steps.Describe(ch)
}

// Collect sends the deploy series.
func (d *Deploys) Collect(ch chan<- prometheus.Metric) {
	d.results.Collect(ch)
	d.steps.Collect(ch)
}

// Certificate is one certificate a TLS listener serves.
type Certificate struct {
	// Host is the name it is served for (the SNI name).
	Host string
	// Source says where it came from: "acme" or "file".
	Source string
	// NotAfter is when it expires.
	NotAfter time.Time
}

// CertSource lists the certificates served now; the TLS listener's
// certificate stores satisfy it.
type CertSource interface {
	Certificates() []Certificate
}

var descCertExpiry = prometheus.NewDesc("cutover_tls_certificate_expiry_timestamp_seconds",
	"When the certificate served for the host expires, in seconds since the Unix epoch.",
	[]string{"host", "source"}, nil)

// Certs is the collector of a CertSource's certificates.
type Certs struct{ src CertSource }

// NewCerts returns the collector of src's certificates.
func NewCerts(src CertSource) *Certs { return &Certs{src: src} }

// Describe describes the certificate series.
func (c *Certs) Describe(ch chan<- *prometheus.Desc) { ch <- descCertExpiry }

// Collect sends one series per certificate.
func (c *Certs) Collect(ch chan<- prometheus.Metric) {
	for _, crt := range c.src.Certificates() {
		ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue,
			float64(crt.NotAfter.UnixNano())/1e9, crt.Host, crt.Source)
	}
}

// Counter is a count read at scrape time (an access log's dropped lines).
type Counter interface{ Count() uint64 }

// counterFunc is a counter series read from a Counter.
type counterFunc struct {
	desc *prometheus.Desc
	c    Counter
}

func (f counterFunc) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }
func (f counterFunc) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(f.desc, prometheus.CounterValue, float64(f.c.Count()))
}

// AccessLogDropped is the collector of the access log lines dropped
// because the writer fell behind (accesslog.Writer.Count).
func AccessLogDropped(c Counter) prometheus.Collector {
	return counterFunc{desc: prometheus.NewDesc("cutover_access_log_dropped_lines_total",
		"Access log lines dropped because the log's writer fell behind (its queue was full).", nil, nil), c: c}
}

// Registry returns a registry with the collectors of apps and deploys,
// of certs when not nil, and Go's and the process's own collectors.
func Registry(apps func() []App, deploys *Deploys, certs CertSource, extra ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(apps), deploys)
	if certs != nil {
		reg.MustRegister(NewCerts(certs))
	}
	for _, c := range extra {
		reg.MustRegister(c)
	}
	return reg
}
