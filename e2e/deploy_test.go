package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// switchAt is a traffic switch to version: it began (the daemon's "switch
// start" event, emitted just before the proxy's routing table changes) and
// ended (the "switch ok" event, just after).
type switchAt struct {
	began, ended time.Time
	version      string
}

// servedByLive reports whether version could have answered a request in
// flight from start to end: some interval in which version was live
// overlaps it. A version is live from the beginning of its switch to the end
// of the next one.
func servedByLive(sw []switchAt, version string, start, end time.Time) bool {
	for i, s := range sw {
		if s.version != version {
			continue
		}
		liveFrom, liveTo := s.began, time.Now().Add(time.Hour)
		if i+1 < len(sw) {
			liveTo = sw[i+1].ended
		}
		if !end.Before(liveFrom) && !start.After(liveTo) {
			return true
		}
	}
	return false
}

// TestDeploysUnderLoad is the core promise: ten deploys alternating v1/v2,
// one whose boot fails, and one rollback, under a steady load of 500
// requests/s mixing keep-alive and fresh connections: no request fails, and
// every response comes from a version that was live while it was in flight.
func TestDeploysUnderLoad(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	broken := e.release("v3", "DEMO_FAIL_BOOT=1\n")
	e.serve()

	_, sw, err := e.deploy(deploy.Request{Source: v1})
	if err != nil {
		t.Fatalf("deploy v1: %v", err)
	}
	sw.version = "v1"
	switches := []switchAt{sw}

	gen := load.Start(load.Options{URL: e.url("/"), Rate: 500, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: 3 * time.Minute}, "steady")
	time.Sleep(500 * time.Millisecond)
	for i := 0; i < 10; i++ {
		src, v := v2, "v2"
		if i%2 == 1 {
			src, v = v1, "v1"
		}
		gen.Mark("deploy " + v)
		_, sw, err := e.deploy(deploy.Request{Source: src})
		if err != nil {
			gen.Stop()
			t.Fatalf("deploy %d (%s): %v", i+1, v, err)
		}
		sw.version = v
		switches = append(switches, sw)
		time.Sleep(300 * time.Millisecond)
		if i == 4 {
			gen.Mark("failed boot")
			_, _, err := e.deploy(deploy.Request{Source: broken})
			var ae *api.Error
			if !errors.As(err, &ae) || !strings.Contains(ae.Msg, "exited during boot") {
				gen.Stop()
				t.Fatalf("deploy of a failing release: got %v, want an 'exited during boot' failure", err)
			}
		}
	}
	// The last deploy was v1 (i = 9); roll back to v2.
	gen.Mark("rollback")
	_, sw, err = e.deploy(deploy.Request{Rollback: true})
	if err != nil {
		gen.Stop()
		t.Fatalf("rollback: %v", err)
	}
	sw.version = "v2"
	switches = append(switches, sw)
	time.Sleep(300 * time.Millisecond)
	rep := gen.Stop()

	var sb strings.Builder
	rep.Print(&sb)
	t.Logf("load report:\n%s", sb.String())
	if rep.Total.Requests < 3000 {
		t.Errorf("only %d requests were made; the load generator did not keep up", rep.Total.Requests)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	wrong := 0
	for _, r := range rep.Results {
		if r.Failed() {
			continue
		}
		if !servedByLive(switches, r.Version, r.Start, r.End) {
			if wrong < 5 {
				t.Errorf("request %s–%s answered by %q, which was not live then", r.Start.Format("15:04:05.000000"),
					r.End.Format("15:04:05.000000"), r.Version)
			}
			wrong++
		}
	}
	if wrong > 0 {
		for _, sw := range switches {
			t.Logf("switch to %s: %s – %s", sw.version, sw.began.Format("15:04:05.000000"), sw.ended.Format("15:04:05.000000"))
		}
		t.Errorf("%d responses came from a version that was not live at the time", wrong)
	}
	if st := e.status(); !strings.HasSuffix(st.Active, "-v2") {
		t.Errorf("live release after rollback = %q, want a v2 release", st.Active)
	}
}
