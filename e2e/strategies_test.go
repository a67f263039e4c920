package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// stickyClients are browser-like clients: each keeps its cookies and
// records the version of every answer, in order.
type stickyClients struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	seqs [][]string
	errs []string
}

func startStickyClients(url string, n int) *stickyClients {
	return startStickyClientsWith(url, n, func(int) http.RoundTripper { return http.DefaultTransport })
}

// startStickyClientsWith starts n sticky clients, client i sending through
// transport(i).
func startStickyClientsWith(url string, n int, transport func(i int) http.RoundTripper) *stickyClients {
	s := &stickyClients{stop: make(chan struct{}), seqs: make([][]string, n)}
	for i := 0; i < n; i++ {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: transport(i)}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for k := 0; k < 5000; k++ { // bounded
				select {
				case <-s.stop:
					return
				case <-time.After(15 * time.Millisecond):
				}
				code, v, body, err := getWith(c, url)
				s.mu.Lock()
				if err != nil || code != http.StatusOK {
					s.errs = append(s.errs, strings.TrimSpace(body)+errString(err))
				} else {
					s.seqs[i] = append(s.seqs[i], v)
				}
				s.mu.Unlock()
			}
		}()
	}
	return s
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func getWith(c *http.Client, url string) (int, string, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b := make([]byte, 256)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode, resp.Header.Get("X-App-Version"), string(b[:n]), nil
}

func (s *stickyClients) finish() ([][]string, []string) {
	close(s.stop)
	s.wg.Wait()
	return s.seqs, s.errs
}

// TestRollingDeployIsStickyAndLossless: a rolling deploy of 4 instances,
// one at a time, under load: no request fails, and no cookie-keeping client
// ever goes from the new version back to the old one.
func TestRollingDeployIsStickyAndLossless(t *testing.T) {
	e := newEnv(t, settings{instances: 4, extra: "[deploy]\nstrategy = \"rolling\"\nbatch = 1\n"})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 300, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "rolling")
	clients := startStickyClients(e.url("/"), 16)
	time.Sleep(300 * time.Millisecond)
	var events []deploy.Event
	_, err := e.client.Deploy(context.Background(), deploy.Request{Source: v2}, func(ev deploy.Event) { events = append(events, ev) })
	time.Sleep(300 * time.Millisecond)
	seqs, cerrs := clients.finish()
	rep := gen.Stop()
	if err != nil {
		t.Fatalf("rolling deploy: %v", err)
	}
	batches := 0
	for _, ev := range events {
		if ev.Type == "step" && ev.Step == deploy.StepShift && ev.Status == "ok" {
			batches++
		}
	}
	if batches != 4 {
		t.Errorf("%d shift steps, want 4 batches of 1", batches)
	}
	if rep.Total.Failed != 0 || len(cerrs) != 0 {
		t.Errorf("failed requests: load %d of %d (%v), sticky clients %d (%v)", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors, len(cerrs), cerrs)
	}
	mixed := 0
	for i, seq := range seqs {
		sawNew := false
		for j, v := range seq {
			if v == "v2" {
				sawNew = true
			}
			if v == "v1" && sawNew {
				t.Errorf("client %d went back from v2 to v1 at answer %d: %v", i, j, seq)
				break
			}
		}
		if len(seq) > 0 && seq[0] == "v1" && seq[len(seq)-1] == "v2" {
			mixed++
		}
	}
	t.Logf("%d requests by load, %d sticky clients (%d moved v1→v2 during the deploy); answers: %s",
		rep.Total.Requests, len(seqs), mixed, rep.Total.VersionList())
}

// TestCanaryWithErrorsRollsBack: a canary answering 30% of requests with
// 500 is rolled back by itself; the errors users saw are few and reported;
// the old release serves throughout.
func TestCanaryWithErrorsRollsBack(t *testing.T) {
	e := newEnv(t, settings{instances: 2, extra: "[deploy]\nstrategy = \"canary\"\nsteps = [\"10%\", \"50%\"]\nstep_time = \"5s\"\nmin_requests = 20\nmax_error_rate = 0.05\n"})
	v1, bad := e.release("v1", ""), e.release("v2", "DEMO_ERROR_RATE=0.3\n")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 300, FreshShare: 0.2, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "canary")
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	_, _, err := e.deploy(deploy.Request{Source: bad})
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	rep := gen.Stop()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.KindAborted || !strings.Contains(ae.Msg, "rolled back") || !strings.Contains(ae.Msg, "error rate") {
		t.Fatalf("canary of a 30%%-error release: %v; want rolled back for its error rate", err)
	}
	t.Logf("rolled back after %s: %s", took.Round(10*time.Millisecond), ae.Msg)
	share := float64(rep.Total.Failed) / float64(rep.Total.Requests)
	t.Logf("users saw %d failed of %d requests (%.2f%%): %v", rep.Total.Failed, rep.Total.Requests, 100*share, rep.Total.Errors)
	if share > 0.02 {
		t.Errorf("users saw %.2f%% failed requests; a 10%% canary at 30%% errors judged within seconds should keep it under 2%%", 100*share)
	}
	for _, r := range rep.Results {
		if !r.Failed() && r.Version != "v1" && r.Version != "v2" {
			t.Fatalf("answer from %q", r.Version)
		}
	}
	last := rep.Results[len(rep.Results)-1]
	if last.Version != "v1" {
		t.Errorf("after the rollback %q answers, want v1", last.Version)
	}
	if st := e.status(); !strings.HasSuffix(st.Active, "-v1") || len(st.Instances) != 2 {
		t.Errorf("after the rollback: live %q with %d instances; want v1 with 2", st.Active, len(st.Instances))
	}
	deploys, _ := e.client.Deploys(context.Background(), 1)
	if len(deploys) != 1 || deploys[0].State != "rolled back" {
		t.Errorf("history: %+v; want the last deploy recorded as rolled back", deploys)
	}
}

// TestCanaryHealthyIsPromotedThroughEveryStep, with a pause and a resume on
// the way.
func TestCanaryHealthyIsPromotedThroughEveryStep(t *testing.T) {
	e := newEnv(t, settings{instances: 2, extra: "[deploy]\nstrategy = \"canary\"\nsteps = [\"10%\", \"50%\"]\nstep_time = \"1s\"\nmin_requests = 10\n"})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 200, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "canary")
	var mu sync.Mutex
	var steps []string
	done := make(chan error, 1)
	go func() {
		_, err := e.client.Deploy(context.Background(), deploy.Request{Source: v2}, func(ev deploy.Event) {
			if ev.Type == "step" && ev.Status == "ok" && (ev.Step == deploy.StepShift || ev.Step == deploy.StepSwitch) {
				mu.Lock()
				steps = append(steps, ev.Message)
				mu.Unlock()
			}
		})
		done <- err
	}()
	// Pause at the first step, check, resume.
	for i := 0; i < 200; i++ {
		if st := e.status(); st.Deploy != nil && strings.HasPrefix(st.Deploy.Detail, "canary") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, stderr, code := e.run("pause"); code != 0 {
		t.Fatalf("pause: %d %s%s", code, out, stderr)
	}
	time.Sleep(300 * time.Millisecond)
	if st := e.status(); st.Deploy == nil || !st.Deploy.Paused {
		t.Errorf("status after pause: %+v; want paused", st.Deploy)
	}
	out, _, _ := e.run("status")
	if !strings.Contains(out, "PAUSED") {
		t.Errorf("status output lacks PAUSED:\n%s", out)
	}
	time.Sleep(1500 * time.Millisecond) // longer than step_time: the clock is stopped
	if st := e.status(); st.Deploy == nil || st.Deploy.Detail != "canary 10%" {
		t.Errorf("paused deploy moved on: %+v", st.Deploy)
	}
	e.run("resume")
	err := <-done
	rep := gen.Stop()
	if err != nil {
		t.Fatalf("healthy canary: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(steps) != 3 || !strings.HasPrefix(steps[0], "10%") || !strings.HasPrefix(steps[1], "50%") {
		t.Errorf("steps %q; want 10%%, 50%%, then the switch", steps)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d requests failed: %v", rep.Total.Failed, rep.Total.Errors)
	}
	if _, v, _, _ := get(e.url("/")); v != "v2" {
		t.Errorf("after the canary %q answers, want v2", v)
	}
}

// TestWatchRollsBackAReleaseThatFailsRequests: a release that passes its
// health checks but fails every request is switched to, caught by the
// watch, and traffic goes back to the warm old release at once.
func TestWatchRollsBackAReleaseThatFailsRequests(t *testing.T) {
	e := newEnv(t, settings{instances: 2, extra: "[deploy]\nwatch = \"20s\"\nmin_requests = 20\n"})
	v1, bad := e.release("v1", ""), e.release("v2", "DEMO_ERROR_RATE=1\n")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	v1Instances := e.status().Instances
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 200, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "watch")
	time.Sleep(300 * time.Millisecond)
	var switched, back time.Time
	_, err := e.client.Deploy(context.Background(), deploy.Request{Source: bad}, func(ev deploy.Event) {
		if ev.Type == "step" && ev.Step == deploy.StepSwitch && ev.Status == "ok" {
			switched = ev.Time
		}
		if ev.Type == "info" && strings.Contains(ev.Message, "back on") {
			back = ev.Time
		}
	})
	time.Sleep(300 * time.Millisecond)
	rep := gen.Stop()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.KindAborted || !strings.Contains(ae.Msg, "watch") {
		t.Fatalf("deploy of a failing release with a watch: %v; want rolled back by the watch", err)
	}
	if back.IsZero() || back.Sub(switched) > 5*time.Second {
		t.Errorf("traffic went back %s after the switch; want within a few seconds of the failures", back.Sub(switched))
	}
	t.Logf("back after %s; users saw %d failed of %d", back.Sub(switched).Round(10*time.Millisecond), rep.Total.Failed, rep.Total.Requests)
	after := e.status().Instances
	if len(after) != 2 || after[0].PID != v1Instances[0].PID || after[1].PID != v1Instances[1].PID {
		t.Errorf("the old release was not kept warm: before %+v, after %+v", v1Instances, after)
	}
	if _, v, _, _ := get(e.url("/")); v != "v1" {
		t.Errorf("after the watch rollback %q answers, want v1", v)
	}
}

// TestWatchAppliesToRollback: a rollback is watched as a deploy is: going
// back to a release that fails its requests is caught, and traffic
// returns to the release rolled back from, kept warm.
func TestWatchAppliesToRollback(t *testing.T) {
	e := newEnv(t, settings{instances: 2, extra: "[deploy]\nwatch = \"4s\"\nmin_requests = 20\n"})
	bad, v2 := e.release("v1", "DEMO_ERROR_RATE=1\n"), e.release("v2", "")
	e.serve()
	for _, src := range []string{bad, v2} { // the first deploy has nothing to watch against
		if _, _, err := e.deploy(deploy.Request{Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 200, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "rollback watch")
	_, err := e.client.Deploy(context.Background(), deploy.Request{Rollback: true}, nil)
	rep := gen.Stop()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.KindAborted || !strings.Contains(ae.Msg, "watch") {
		t.Fatalf("rollback to a release that fails its requests: %v; want it undone by the watch", err)
	}
	t.Logf("users saw %d failed of %d", rep.Total.Failed, rep.Total.Requests)
	if _, v, _, _ := get(e.url("/")); v != "v2" {
		t.Errorf("after the watched rollback %q answers, want v2", v)
	}
}
