package metrics

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/proxy"
)

// clock is a settable clock for the proxy's windows.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeEngine is an Engine with fixed instances and progress.
type fakeEngine struct {
	instances []instance.Status
	progress  *deploy.Progress
}

func (f *fakeEngine) Instances() []instance.Status { return f.instances }
func (f *fakeEngine) Progress() *deploy.Progress   { return f.progress }

// served is a proxy serving two releases, r1 and r2, each with one
// httptest backend, on a listener of its own.
type served struct {
	p     *proxy.Proxy
	url   string
	clock *clock
}

func serveTwoReleases(t *testing.T) *served {
	t.Helper()
	c := &clock{t: time.Now()}
	p := proxy.New(proxy.Options{App: "shop", Now: c.now})
	for _, rel := range []string{"r1", "r2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/fail" {
				w.WriteHeader(http.StatusInternalServerError)
			}
			io.WriteString(w, rel)
		}))
		t.Cleanup(srv.Close)
		b := p.AddBackend(proxy.BackendSpec{ID: rel + "-1", Release: rel, Addr: strings.TrimPrefix(srv.URL, "http://")})
		b.SetHealthy(true)
	}
	p.SetWeights(map[string]int{"r1": 75, "r2": 25})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := p.NewServer(5*time.Second, 30*time.Second)
	go hs.Serve(ln) //nolint:errcheck // closed at cleanup
	t.Cleanup(func() { hs.Close() })
	return &served{p: p, url: "http://" + ln.Addr().String(), clock: c}
}

func (s *served) get(t *testing.T, path string, n int) {
	t.Helper()
	for range n {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// scrape returns the registry's output in the text format.
func scrape(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// value returns the value of the series written exactly as series in
// the text output, or "" when absent.
func value(out, series string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func newRegistry(s *served, e Engine, d *Deploys) *prometheus.Registry {
	return Registry(func() []App { return []App{{Name: "shop", Proxy: s.p, Engine: e}} }, d, nil)
}

func TestCollectorTwoReleases(t *testing.T) {
	s := serveTwoReleases(t)
	reg := newRegistry(s, nil, NewDeploys())
	before := scrape(t, reg)
	for _, rel := range []string{"r1", "r2"} {
		series := `cutover_http_requests_total{app="shop",code="2xx",release="` + rel + `"}`
		if got := value(before, series); got != "0" {
			t.Errorf("%s before any request: got %q, want 0", series, got)
		}
	}
	s.get(t, "/", 8)
	s.get(t, "/fail", 4)
	out := scrape(t, reg)
	// 75/25 over 8 and over 4 requests: exactly 6+3 and 2+1.
	for series, want := range map[string]string{
		`cutover_http_requests_total{app="shop",code="2xx",release="r1"}`:                 "6",
		`cutover_http_requests_total{app="shop",code="2xx",release="r2"}`:                 "2",
		`cutover_http_requests_total{app="shop",code="5xx",release="r1"}`:                 "3",
		`cutover_http_requests_total{app="shop",code="5xx",release="r2"}`:                 "1",
		`cutover_http_request_duration_seconds_count{app="shop",release="r1"}`:            "9",
		`cutover_http_request_duration_seconds_bucket{app="shop",release="r2",le="+Inf"}`: "3",
		`cutover_release_weight_ratio{app="shop",release="r1"}`:                           "0.75",
		`cutover_release_weight_ratio{app="shop",release="r2"}`:                           "0.25",
		`cutover_http_unserved_requests_total{app="shop"}`:                                "0",
	} {
		if got := value(out, series); got != want {
			t.Errorf("%s: got %q, want %q", series, got, want)
		}
	}
	// In flight is shown (its value may still count a request whose
	// client already has its answer).
	if value(out, `cutover_http_requests_in_flight{app="shop",release="r1"}`) == "" {
		t.Errorf("no in-flight series for r1")
	}
	if strings.Contains(out, `code="other"`) || strings.Contains(out, `code="1xx"`) {
		t.Errorf("classes never seen are shown:\n%s", out)
	}
}

func TestCollectorDropsRetiredRelease(t *testing.T) {
	s := serveTwoReleases(t)
	reg := newRegistry(s, nil, NewDeploys())
	s.get(t, "/", 4)
	if out := scrape(t, reg); !strings.Contains(out, `release="r1"`) {
		t.Fatalf("r1 not shown:\n%s", out)
	}
	// r1 retired: no weight, no backend; forgotten WindowSpan later.
	s.p.SetActive("r2")
	s.p.RemoveBackend("r1-1")
	if out := scrape(t, reg); !strings.Contains(out, `release="r1"`) {
		t.Errorf("r1 gone at once; it should stay for WindowSpan after its last request:\n%s", out)
	}
	// The last request's end may come after its client has the answer.
	for deadline := time.Now().Add(10 * time.Second); s.p.Stats()["r1"].InFlight != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	s.clock.add(proxy.WindowSpan + 2*time.Second)
	out := scrape(t, reg)
	if strings.Contains(out, `release="r1"`) {
		t.Errorf("r1 still shown WindowSpan after it was retired:\n%s", out)
	}
	if !strings.Contains(out, `release="r2"`) {
		t.Errorf("r2, live, is gone:\n%s", out)
	}
}

func TestCollectorInstancesAndDeploy(t *testing.T) {
	s := serveTwoReleases(t)
	e := &fakeEngine{
		instances: []instance.Status{
			{ID: "r1-1", Release: "r1", State: "running", Healthy: true, Restarts: 2, ChecksPassed: 40, ChecksFailed: 3},
			{ID: "r2-1", Release: "r2", State: "backoff"},
		},
		progress: &deploy.Progress{Kind: "deploy", Release: "r2", Step: "shift", Strategy: "canary", ShiftStep: 2, ShiftSteps: 3},
	}
	d := NewDeploys()
	obs := d.Observer("shop")
	obs("deploy", deploy.Event{Type: "step", Step: deploy.StepBoot, Status: "ok", DurationMS: 1500})
	obs("deploy", deploy.Event{Type: "step", Step: deploy.StepBoot, Status: "start"})
	obs("deploy", deploy.Event{Type: "result", OK: true})
	obs("rollback", deploy.Event{Type: "result", ErrorKind: "aborted"})
	out := scrape(t, newRegistry(s, e, d))
	for series, want := range map[string]string{
		`cutover_instance_up{app="shop",instance="r1-1",release="r1"}`:                                     "1",
		`cutover_instance_up{app="shop",instance="r2-1",release="r2"}`:                                     "0",
		`cutover_instance_healthy{app="shop",instance="r1-1",release="r1"}`:                                "1",
		`cutover_instance_restarts_total{app="shop",instance="r1-1",release="r1"}`:                         "2",
		`cutover_instance_health_checks_total{app="shop",instance="r1-1",release="r1",result="pass"}`:      "40",
		`cutover_instance_health_checks_total{app="shop",instance="r1-1",release="r1",result="fail"}`:      "3",
		`cutover_deploy_in_progress{app="shop",kind="deploy",release="r2",step="shift",strategy="canary"}`: "1",
		`cutover_deploy_strategy_step{app="shop",release="r2"}`:                                            "2",
		`cutover_deploy_strategy_steps{app="shop",release="r2"}`:                                           "3",
		`cutover_deploys_total{app="shop",kind="deploy",outcome="ok"}`:                                     "1",
		`cutover_deploys_total{app="shop",kind="rollback",outcome="aborted"}`:                              "1",
		`cutover_deploy_step_duration_seconds_count{app="shop",status="ok",step="boot"}`:                   "1",
		`cutover_deploy_step_duration_seconds_bucket{app="shop",status="ok",step="boot",le="1"}`:           "0",
		`cutover_deploy_step_duration_seconds_bucket{app="shop",status="ok",step="boot",le="5"}`:           "1",
	} {
		if got := value(out, series); got != want {
			t.Errorf("%s: got %q, want %q", series, got, want)
		}
	}
	e.progress = nil
	if out := scrape(t, newRegistry(s, e, d)); strings.Contains(out, "cutover_deploy_in_progress{") {
		t.Errorf("a deploy shown in progress when none runs:\n%s", out)
	}
}

type certs []Certificate

func (c certs) Certificates() []Certificate { return c }

func TestCertificates(t *testing.T) {
	reg := Registry(func() []App { return nil }, NewDeploys(), certs{{Host: "shop.example.com", Source: "acme", NotAfter: time.Unix(1800000000, 0)}})
	out := scrape(t, reg)
	if got := value(out, `cutover_tls_certificate_expiry_timestamp_seconds{host="shop.example.com",source="acme"}`); got != "1.8e+09" {
		t.Errorf("certificate expiry: got %q\n%s", got, out)
	}
	if out := scrape(t, Registry(func() []App { return nil }, NewDeploys(), nil)); strings.Contains(out, "cutover_tls_") {
		t.Errorf("certificate series without a source:\n%s", out)
	}
}

type count uint64

func (c count) Count() uint64 { return uint64(c) }

// fullRegistry has every series cutover can show.
func fullRegistry(t *testing.T) *prometheus.Registry {
	s := serveTwoReleases(t)
	s.get(t, "/", 4)
	e := &fakeEngine{
		instances: []instance.Status{{ID: "r1-1", Release: "r1", State: "running", Healthy: true}},
		progress:  &deploy.Progress{Kind: "deploy", Release: "r2", Step: "shift", Strategy: "canary", ShiftStep: 1, ShiftSteps: 3},
	}
	d := NewDeploys()
	d.Observer("shop")("deploy", deploy.Event{Type: "step", Step: deploy.StepBoot, Status: "ok", DurationMS: 1500})
	d.Observer("shop")("deploy", deploy.Event{Type: "result", OK: true})
	return Registry(func() []App { return []App{{Name: "shop", Proxy: s.p, Engine: e}} }, d,
		certs{{Host: "shop.example.com", Source: "acme", NotAfter: time.Now()}}, AccessLogDropped(count(0)))
}

// TestLint runs promlint, the linter of `promtool check metrics`, over
// every series.
func TestLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(fullRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestPromtool runs Prometheus's own `promtool check metrics` over the
// output, when promtool is installed (Debian's package prometheus).
func TestPromtool(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed; .ci/run installs Debian's prometheus package")
		}
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, fullRegistry(t)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
