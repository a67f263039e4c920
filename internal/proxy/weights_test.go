package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// send sends a GET after letting edit change the request, and returns the
// response (body already read and closed) with its body.
func send(t testing.TB, c *http.Client, url string, edit func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// twoReleases starts a proxy with one backend answering its release name
// for each of r1 and r2.
func twoReleases(t *testing.T, opts Options) (*Proxy, string) {
	t.Helper()
	p, url := startProxy(t, opts)
	addHealthy(p, "a1", "r1", nameBackend(t, "r1"))
	addHealthy(p, "b1", "r2", nameBackend(t, "r2"))
	return p, url
}

func TestWeightsSplit(t *testing.T) {
	p, url := twoReleases(t, Options{})
	p.SetWeights(map[string]int{"r1": 25, "r2": 75})
	c := newClient(t)

	got := map[string]int{}
	run, longest := 0, 0
	for range 1000 {
		resp, body := send(t, c, url, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status: got %d, want %d", resp.StatusCode, http.StatusOK)
		}
		got[body]++
		if body == "r2" {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	// The choice is deterministic: every cycle of 4 requests holds exactly
	// one for r1.
	want := map[string]int{"r1": 250, "r2": 750}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests per release (-want +got):\n%s", diff)
	}
	if longest > 3 {
		t.Errorf("longest run of r2: got %d, want at most 3 (shares interleaved)", longest)
	}
}

func TestByWeightShares(t *testing.T) {
	tests := []struct {
		weights map[string]int
		n       int
		want    map[string]int
		// maxRun bounds consecutive requests to the same release.
		maxRun map[string]int
	}{
		{map[string]int{"a": 5, "b": 95}, 100, map[string]int{"a": 5, "b": 95}, map[string]int{"a": 1, "b": 20}},
		{map[string]int{"a": 1, "b": 1, "c": 1}, 300, map[string]int{"a": 100, "b": 100, "c": 100}, map[string]int{"a": 1, "b": 1, "c": 1}},
		{map[string]int{"a": 33, "b": 67}, 1000, map[string]int{"a": 330, "b": 670}, map[string]int{"a": 1, "b": 4}},
		{map[string]int{"a": 50, "b": 50}, 10, map[string]int{"a": 5, "b": 5}, map[string]int{"a": 1, "b": 1}},
		{map[string]int{"a": MaxWeight * 4, "b": MaxWeight}, 10, map[string]int{"a": 5, "b": 5}, map[string]int{"a": 1, "b": 1}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			p := New(Options{})
			for name := range tt.weights {
				addHealthy(p, name, name, "127.0.0.1:1")
			}
			p.SetWeights(tt.weights)
			tab := p.table.Load()
			got := map[string]int{}
			runs := map[string]int{}
			last, run := "", 0
			for i := range tt.n {
				name := tab.byWeight(uint64(i) + 12345).rel.name
				got[name]++
				if name == last {
					run++
				} else {
					last, run = name, 1
				}
				runs[name] = max(runs[name], run)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("requests per release (-want +got):\n%s", diff)
			}
			for name, limit := range tt.maxRun {
				if runs[name] > limit {
					t.Errorf("longest run of %s: got %d, want at most %d", name, runs[name], limit)
				}
			}
		})
	}
}

func TestStrideCoprime(t *testing.T) {
	for total := uint64(1); total < 2000; total++ {
		s := strideFor(total)
		if s == 0 || (total > 1 && s >= total) || gcd(s, total) != 1 {
			t.Fatalf("strideFor(%d): got %d, want a number below it coprime with it", total, s)
		}
	}
}

func TestWeightsFallBackToHealthyRelease(t *testing.T) {
	p, url := startProxy(t, Options{HoldTimeout: 20 * time.Millisecond})
	a := addHealthy(p, "a1", "r1", nameBackend(t, "r1"))
	b := addHealthy(p, "b1", "r2", nameBackend(t, "r2"))
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	c := newClient(t)

	b.SetHealthy(false)
	for range 6 {
		if resp, body := send(t, c, url, nil); body != "r1" {
			t.Errorf("with r2 unhealthy: got %d %q, want %q", resp.StatusCode, body, "r1")
		}
	}
	a.SetHealthy(false)
	if resp, _ := send(t, c, url, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("with no healthy backend: got %d, want %d (held, then 503)", resp.StatusCode, http.StatusServiceUnavailable)
	}
}

func TestWeightsAndActive(t *testing.T) {
	p := New(Options{})
	if got := p.Active(); got != "" {
		t.Errorf("Active of a new proxy: got %q, want %q", got, "")
	}
	p.SetActive("r1")
	if diff := cmp.Diff(map[string]int{"r1": 100}, p.Weights()); diff != "" {
		t.Errorf("weights after SetActive (-want +got):\n%s", diff)
	}
	p.SetWeights(map[string]int{"r1": 30, "r2": 70, "r3": 0, "r4": -5})
	if diff := cmp.Diff(map[string]int{"r1": 30, "r2": 70}, p.Weights()); diff != "" {
		t.Errorf("weights (-want +got):\n%s", diff)
	}
	if got := p.Active(); got != "r2" {
		t.Errorf("Active: got %q, want %q (largest weight)", got, "r2")
	}
	p.SetWeights(map[string]int{"r1": 50, "r2": 50})
	if got := p.Active(); got != "r2" {
		t.Errorf("Active on a tie: got %q, want %q (newest name)", got, "r2")
	}
	p.SetActive("")
	if got := p.Weights(); len(got) != 0 {
		t.Errorf("weights after SetActive(\"\"): got %v, want none", got)
	}
	if got := p.Active(); got != "" {
		t.Errorf("Active after SetActive(\"\"): got %q, want %q", got, "")
	}
}

// Changing weights while requests flow, with clients that keep cookies,
// must not fail a single request (run with -race).
func TestSetWeightsUnderLoad(t *testing.T) {
	p, url := startProxy(t, Options{Sticky: true})
	addHealthy(p, "a1", "r1", nameBackend(t, "r1"))
	addHealthy(p, "a2", "r1", nameBackend(t, "r1"))
	addHealthy(p, "b1", "r2", nameBackend(t, "r2"))
	p.SetActive("r1")

	const workers, each = 8, 100
	errs := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t)
		c.Jar = jar
		wg.Go(func() {
			for range each {
				resp, err := c.Get(url)
				if err != nil {
					errs <- err.Error()
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs <- fmt.Sprintf("%d %q %v", resp.StatusCode, body, err)
				}
				if got := resp.Header.Get(DefaultVersionHeader); got != string(body) {
					errs <- fmt.Sprintf("version header %q on a response of %q", got, body)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	steps := []map[string]int{{"r1": 100}, {"r1": 75, "r2": 25}, {"r1": 50, "r2": 50}, {"r2": 100}, {"r1": 10, "r2": 90}}
	for i, running := 0, true; running; i++ {
		select {
		case <-done:
			running = false
		default:
			p.SetWeights(steps[i%len(steps)])
			p.SetPreview([]string{"", "r2"}[i%2], "token")
			_ = p.Window("r1", time.Minute)
		}
	}
	close(errs)
	for e := range errs {
		t.Errorf("request failed during weight changes: %s", e)
	}
}
