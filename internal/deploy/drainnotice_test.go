package deploy

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The instances of a release being drained are told so through the file
// named in CUTOVER_DRAIN_FILE, while what they hold open is still open:
// each real process sees its own file appear during the drain, with when
// it began and when the cut starts; the files are gone once the instances
// stopped.
func TestDrainNoticeReachesInstances(t *testing.T) {
	h := newHarness(t, setup{instances: 2})
	v1 := h.mustDeploy("v1", map[string]string{watchDrainFile: ""})
	v1Dir := filepath.Join(h.cfg.ReleasesDir(), v1)
	pids := h.pids(v1)

	// A stream open on v1 holds its drain open (drain_timeout 2s).
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/stream?n=1000&every=50ms", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /stream: %v", err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("first line of the stream: %v", err)
	}

	type result struct {
		live string
		err  error
	}
	done := make(chan result, 1)
	started := time.Now()
	go func() {
		live, _, err := h.deploy(Request{Source: h.source("v2", nil)})
		done <- result{live, err}
	}()
	// Every v1 process notices its drain while the stream is still open.
	notices := map[int]string{}
	for deadline := time.Now().Add(waitTimeout); len(notices) < len(pids) && time.Now().Before(deadline); {
		for _, pid := range pids {
			if b, err := os.ReadFile(filepath.Join(v1Dir, "drain-notice-"+strconv.Itoa(pid))); err == nil {
				notices[pid] = string(b)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	noticedAfter := time.Since(started)
	if len(notices) != len(pids) {
		t.Fatalf("drain noticed by %d of the %d instances of v1 (%v)", len(notices), len(pids), notices)
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Errorf("the stream was already cut when the drain was noticed: %v", err)
	}
	resp.Body.Close() // the app would have asked its client to reconnect
	r := <-done
	if r.err != nil {
		t.Fatalf("deploy v2: %v", r.err)
	}
	t.Logf("drain noticed by every instance %s after the deploy began", noticedAfter.Round(time.Millisecond))

	paths := map[string]bool{}
	for pid, n := range notices {
		path, body, _ := strings.Cut(n, "\n")
		paths[path] = true
		if filepath.Dir(path) != filepath.Join(h.cfg.DataDir, "drain") {
			t.Errorf("pid %d: CUTOVER_DRAIN_FILE %q, want a file in %s", pid, path, filepath.Join(h.cfg.DataDir, "drain"))
		}
		var began, cutFrom time.Time
		for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
			k, v, _ := strings.Cut(l, "=")
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				t.Errorf("pid %d: line %q: %v", pid, l, err)
			}
			switch k {
			case "began":
				began = at
			case "cut_from":
				cutFrom = at
			}
		}
		if got := cutFrom.Sub(began); got < 1900*time.Millisecond || got > 2100*time.Millisecond {
			t.Errorf("pid %d: cut_from - began = %v, want drain_timeout (2s)", pid, got)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("drain file %s still there after the deploy (%v)", path, err)
		}
	}
	if len(paths) != len(pids) {
		t.Errorf("drain files: got %d distinct paths for %d instances", len(paths), len(pids))
	}
}
