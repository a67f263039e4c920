package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/traffic"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// recordedStatus is a status as a daemon answers it during a canary: v1
// live at 75 %, v2 at 25 %, its times relative to t0, with the given
// counters.
func recordedStatus(t0 time.Time, v1Reqs, v1Errs, v2Reqs, v2Errs uint64) deploy.Status {
	return deploy.Status{
		App: "web", Listen: "127.0.0.1:8080", Active: "20261205-101500-v1",
		Deploy: &deploy.Progress{DeployID: 7, Kind: "deploy", Release: "20261205-180000-v2", From: "20261205-101500-v1",
			Step: "shift", Detail: "canary 25%", Strategy: "canary", StartedAt: t0.Add(-42 * time.Second), ShiftStep: 1, ShiftSteps: 3},
		Traffic: map[string]traffic.ReleaseStats{
			"20261205-101500-v1": {Requests: v1Reqs, Status5xx: v1Errs, InFlight: 3},
			"20261205-180000-v2": {Requests: v2Reqs, Status5xx: v2Errs, InFlight: 1},
		},
		Weights: map[string]int{"20261205-101500-v1": 75, "20261205-180000-v2": 25},
		Recent: map[string]traffic.WindowStats{
			"20261205-101500-v1": {Requests: 5400, Errors: 0, P50: 1234 * time.Microsecond, P99: 21 * time.Millisecond},
			"20261205-180000-v2": {Requests: 600, Errors: 6, ErrorRate: 0.01, P50: 1510 * time.Microsecond, P99: 58400 * time.Microsecond},
		},
		Instances: []instance.Status{
			{ID: "v1-1", Release: "20261205-101500-v1", PID: 100, Port: 4001, State: "running", Healthy: true, StartedAt: t0.Add(-2 * time.Hour)},
			{ID: "v1-2", Release: "20261205-101500-v1", PID: 101, Port: 4002, State: "running", Healthy: true, Restarts: 2, StartedAt: t0.Add(-5 * time.Minute)},
			{ID: "v2-1", Release: "20261205-180000-v2", PID: 200, Port: 4003, State: "running", Healthy: false, StartedAt: t0.Add(-30 * time.Second)},
		},
	}
}

func recordedDeploys(t0 time.Time) []state.Deploy {
	return []state.Deploy{
		{ID: 7, Kind: "deploy", Release: "20261205-180000-v2", FromRelease: "20261205-101500-v1", StartedAt: t0.Add(-42 * time.Second), State: state.DeployRunning},
		{ID: 6, Kind: "deploy", Release: "20261205-170000-v2", FromRelease: "20261205-101500-v1", StartedAt: t0.Add(-time.Hour),
			FinishedAt: t0.Add(-time.Hour + 95*time.Second), State: state.DeployRolledBack, Error: "canary judged slower: p50 +40 %\nsecond line"},
		{ID: 5, Kind: "deploy", Release: "20261205-101500-v1", StartedAt: t0.Add(-8 * time.Hour),
			FinishedAt: t0.Add(-8*time.Hour + 12*time.Second), State: state.DeploySucceeded},
		{ID: 4, Kind: "rollback", Release: "20261204-090000-v0", FromRelease: "20261204-120000-v9", StartedAt: t0.Add(-30 * time.Hour),
			FinishedAt: t0.Add(-30*time.Hour + 740*time.Millisecond), State: state.DeploySucceeded},
	}
}

// TestRenderWatchGolden renders three recorded snapshots: the first (the
// last minute's rates), one a second later (rates from the counters), and
// one after a daemon restart (counters back near zero: no rate, no
// negative number).
func TestRenderWatchGolden(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 18, 0, 42, 0, time.UTC)
	sts := []deploy.Status{
		recordedStatus(t0, 100000, 10, 2000, 20),
		recordedStatus(t0, 100090, 10, 2030, 21),
		recordedStatus(t0, 40, 0, 12, 0),
	}
	var out bytes.Buffer
	var prev *watchSnapshot
	for i, st := range sts {
		at := t0.Add(time.Duration(i) * time.Second)
		a := watchApp{Status: st, Deploys: recordedDeploys(t0)}
		if prev != nil {
			a.Rates = computeRates(&prev.Apps[0].Status, st, at.Sub(prev.At))
		}
		snap := &watchSnapshot{At: at, Apps: []watchApp{a}}
		if i > 0 {
			out.WriteString("\n")
		}
		renderWatch(&out, snap, time.Second)
		prev = snap
	}
	golden := filepath.Join("testdata", "watch.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRenderWatchGolden -update ./internal/cli to write it)", err)
	}
	if out.String() != string(want) {
		t.Errorf("rendering differs from %s:\ngot:\n%s\nwant:\n%s", golden, out.String(), want)
	}
}

func TestComputeRates(t *testing.T) {
	st := func(m map[string]traffic.ReleaseStats) deploy.Status { return deploy.Status{Traffic: m} }
	prev := st(map[string]traffic.ReleaseStats{"a": {Requests: 1000, Status5xx: 10}, "b": {Requests: 50}})
	cases := []struct {
		name string
		prev *deploy.Status
		cur  deploy.Status
		dt   time.Duration
		want map[string]releaseRates
	}{
		{"first snapshot", nil, prev, time.Second, nil},
		{"counters grow", &prev, st(map[string]traffic.ReleaseStats{"a": {Requests: 1200, Status5xx: 20}, "b": {Requests: 50}}), 2 * time.Second,
			map[string]releaseRates{"a": {ReqPerSec: 100, ErrorRate: 0.05}, "b": {}}},
		{"new release counts from zero", &prev, st(map[string]traffic.ReleaseStats{"a": {Requests: 1000, Status5xx: 10}, "c": {Requests: 30, Status5xx: 3}}), time.Second,
			map[string]releaseRates{"a": {}, "c": {ReqPerSec: 30, ErrorRate: 0.1}}},
		{"daemon restarted: counters reset", &prev, st(map[string]traffic.ReleaseStats{"a": {Requests: 7}, "b": {Requests: 60}}), time.Second,
			map[string]releaseRates{"a": {Reset: true}, "b": {ReqPerSec: 10}}},
		{"errors reset alone", &prev, st(map[string]traffic.ReleaseStats{"a": {Requests: 1001, Status5xx: 0}}), time.Second,
			map[string]releaseRates{"a": {Reset: true}}},
		// A new daemon that already counted past the old one's figures:
		// only TrafficSince tells.
		{"another daemon counts", &prev, deploy.Status{TrafficSince: time.Unix(1e9, 0),
			Traffic: map[string]traffic.ReleaseStats{"a": {Requests: 5000, Status5xx: 10}, "b": {Requests: 60}}}, time.Second,
			map[string]releaseRates{"a": {Reset: true}, "b": {Reset: true}}},
	}
	for _, c := range cases {
		got := computeRates(c.prev, c.cur, c.dt)
		if len(got) != len(c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			continue
		}
		for rel, w := range c.want {
			g := got[rel]
			if g != w {
				t.Errorf("%s: release %s: got %+v, want %+v", c.name, rel, g, w)
			}
			if g.ReqPerSec < 0 || g.ErrorRate < 0 {
				t.Errorf("%s: release %s: negative rate %+v", c.name, rel, g)
			}
		}
	}
}

// fakeDaemon answers the status API on a unix socket from a list of
// statuses, one per /v1/status call (the last repeats), until closed.
type fakeDaemon struct {
	mu    sync.Mutex
	sts   []deploy.Status
	calls int
	ln    net.Listener
	srv   *http.Server
}

func startFakeDaemon(t *testing.T, sts []deploy.Status) (*fakeDaemon, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDaemon{sts: sts, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/apps", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]string{"web"})
	})
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		st := f.sts[min(f.calls, len(f.sts)-1)]
		f.calls++
		f.mu.Unlock()
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("/v1/deploys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]state.Deploy{})
	})
	f.srv = &http.Server{Handler: mux}
	go f.srv.Serve(ln)
	t.Cleanup(func() { f.srv.Close() })
	return f, sock
}

func (f *fakeDaemon) served() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// TestWatchPipedUntilDaemonGoes runs the watch, not on a terminal, against
// a daemon that restarts (counters reset) and then goes away: one block
// per interval separated by a blank line, no negative rate, and an error
// saying the daemon stopped answering.
func TestWatchPipedUntilDaemonGoes(t *testing.T) {
	t0 := time.Now()
	f, sock := startFakeDaemon(t, []deploy.Status{
		recordedStatus(t0, 100000, 10, 2000, 20),
		recordedStatus(t0, 100090, 10, 2030, 21),
		recordedStatus(t0, 40, 0, 12, 0),
	})
	var out bytes.Buffer
	w := &watcher{c: api.NewClient(sock), interval: 50 * time.Millisecond, out: &out, now: time.Now, giveUp: 300 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- w.run(context.Background()) }()
	// The 5th status asked means the 4th block is printed: the daemon
	// counts a call before it answers, and closing it at the 4th could
	// cut that answer (3 blocks).
	for f.served() < 5 {
		time.Sleep(10 * time.Millisecond)
	}
	f.srv.Close()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end 10 s after the daemon went away")
	}
	if err == nil || !strings.Contains(err.Error(), "the daemon has not answered since") || !strings.Contains(err.Error(), "cutover serve") {
		t.Errorf("error = %v; want one saying the daemon stopped answering and what to do", err)
	}
	blocks := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n\ncutover status --watch")
	if len(blocks) < 4 {
		t.Fatalf("%d blocks, want 4 or more, separated by a blank line:\n%s", len(blocks), out.String())
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Errorf("ANSI sequences in piped output:\n%q", out.String())
	}
	if !strings.Contains(blocks[2], "20261205-101500-v1  75%     -      -") {
		t.Errorf("block after the daemon restart should show no rate for v1:\n%s", blocks[2])
	}
	if strings.Contains(out.String(), "-0.") || strings.Contains(out.String(), " -1") {
		t.Errorf("a negative number in the output:\n%s", out.String())
	}
}

// TestWatchTerminalAndJSON: on a terminal, each redraw clears the screen
// and the cursor is hidden, then shown again when Ctrl-C ends the watch
// (without error); with --json, one object a line.
func TestWatchTerminalAndJSON(t *testing.T) {
	t0 := time.Now()
	for _, asJSON := range []bool{false, true} {
		f, sock := startFakeDaemon(t, []deploy.Status{recordedStatus(t0, 100, 0, 10, 0), recordedStatus(t0, 200, 0, 20, 1)})
		var out bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		w := &watcher{c: api.NewClient(sock), interval: 30 * time.Millisecond, asJSON: asJSON, terminal: true,
			out: &out, now: time.Now, giveUp: time.Second}
		done := make(chan error, 1)
		go func() { done <- w.run(ctx) }()
		for f.served() < 4 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("json=%v: Ctrl-C: %v, want a clean end", asJSON, err)
		}
		s := out.String()
		if asJSON {
			lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
			if len(lines) < 3 {
				t.Fatalf("%d JSON lines, want 3 or more:\n%s", len(lines), s)
			}
			for i, l := range lines {
				var snap watchSnapshot
				if err := json.Unmarshal([]byte(l), &snap); err != nil || len(snap.Apps) != 1 || snap.Apps[0].Status.App != "web" {
					t.Fatalf("line %d: %v: %s", i, err, l)
				}
				if i == 1 && snap.Apps[0].Rates["20261205-180000-v2"].ErrorRate != 0.1 {
					t.Errorf("second line: rates %+v, want v2's error rate 0.1", snap.Apps[0].Rates)
				}
			}
			continue
		}
		if !strings.HasPrefix(s, ansiHideCursor+ansiClear) || !strings.HasSuffix(s, ansiShowCursor) {
			t.Errorf("terminal output should hide the cursor, clear, and show the cursor at the end:\n%q", s)
		}
		if n := strings.Count(s, ansiClear); n < 3 {
			t.Errorf("%d redraws, want 3 or more", n)
		}
	}
}

func TestWatchFlags(t *testing.T) {
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"status", "--interval", "2s"}, "--interval goes with --watch"},
		{[]string{"status", "--watch", "--interval", "10ms"}, "too short"},
	} {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), c.args, &out, &errb); code != ExitUsage || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("cutover %q: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), ExitUsage, c.stderr)
		}
	}
}

// TestIsTerminal: /dev/null is a character device but no terminal, so
// `status --watch >/dev/null` must not be taken for one; a pipe neither.
func TestIsTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, out := range map[string]io.Writer{"/dev/null": null, "a pipe": w, "a buffer": &bytes.Buffer{}} {
		if isTerminal(out) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
}
