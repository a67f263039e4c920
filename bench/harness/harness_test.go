package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTargets(t *testing.T) {
	in := "# comment\ndirect\thttp://127.0.0.1:9000/\t10\n\nnginx\thttp://127.0.0.1:9002\t20,21,22\nnginx-bare\thttp://127.0.0.1:9006\t20,21,22\tget, latency\n"
	got, err := parseTargets(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []target{
		{Name: "direct", URL: "http://127.0.0.1:9000", PIDs: []int{10}},
		{Name: "nginx", URL: "http://127.0.0.1:9002", PIDs: []int{20, 21, 22}},
		{Name: "nginx-bare", URL: "http://127.0.0.1:9006", PIDs: []int{20, 21, 22}, Only: map[string]bool{"get": true, "latency": true}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("targets (-want +got):\n%s", d)
	}

	if !got[0].in("idle") || !got[2].in("get") || got[2].in("idle") {
		t.Errorf("scenario filter: direct in idle %v (want true), nginx-bare in get %v (want true), in idle %v (want false)",
			got[0].in("idle"), got[2].in("get"), got[2].in("idle"))
	}

	for _, bad := range []string{"", "a\tb\n", "a\thttp://x\tnope\n", "a\thttp://x\t0\n", "a\thttp://x\t1\tget,gets\n", "a\thttp://x\t1\tget\tmore\n"} {
		if _, err := parseTargets(strings.NewReader(bad)); err == nil {
			t.Errorf("parseTargets(%q): got no error, want one", bad)
		}
	}
}

func TestRotate(t *testing.T) {
	ts := []target{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	for k, want := range []string{"abc", "bca", "cab", "abc"} {
		var got string
		for _, x := range rotate(ts, k) {
			got += x.Name
		}
		if got != want {
			t.Errorf("rotate(%d): got %q, want %q", k, got, want)
		}
	}
}

func TestParseStatTicks(t *testing.T) {
	// The command name holds a space and a parenthesis on purpose.
	stat := "1234 (we ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 100 1000 10 18446744073709551615\n"
	got, err := parseStatTicks(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 325 {
		t.Errorf("ticks: got %d, want %d", got, 325)
	}
	if _, err := parseStatTicks("1234 (x) S 1 2"); err == nil {
		t.Error("short stat line: got no error, want one")
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\tnginx\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t1\n"
	got, err := parseStatusKiB(status, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	if got != 12345 {
		t.Errorf("VmRSS: got %d, want %d", got, 12345)
	}
	if _, err := parseStatusKiB(status, "VmHWM"); err == nil {
		t.Error("missing key: got no error, want one")
	}
}

func TestParseIOSyscalls(t *testing.T) {
	io := "rchar: 100\nwchar: 200\nsyscr: 7\nsyscw: 5\nread_bytes: 0\n"
	got, err := parseIOSyscalls(io)
	if err != nil {
		t.Fatal(err)
	}
	if got != 12 {
		t.Errorf("syscalls: got %d, want %d", got, 12)
	}
	if _, err := parseIOSyscalls("syscr: 7\n"); err == nil {
		t.Error("syscw missing: got no error, want one")
	}
}

func TestProcfsOfSelf(t *testing.T) {
	// Burn a little CPU so that at least one tick is accounted.
	deadline := time.Now().Add(50 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		_ = n * n
	}
	pid := os.Getpid()
	if _, err := cpuTime([]int{pid}); err != nil {
		t.Errorf("cpuTime of self: %v", err)
	}
	rss, err := rssKiB([]int{pid, pid})
	if err != nil {
		t.Fatal(err)
	}
	one, err := rssKiB([]int{pid})
	if err != nil {
		t.Fatal(err)
	}
	if one <= 0 || rss < one {
		t.Errorf("rss: got %d KiB for self and %d for self twice, want > 0 and a sum", one, rss)
	}
	if _, err := ioSyscalls([]int{pid}); err != nil {
		t.Errorf("ioSyscalls of self: %v", err)
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 5s test @ http://127.0.0.1:9000/\n  1 threads and 50 connections\n" +
		"WRKRESULT requests=100000 duration_us=5000000 bytes=1300000 connect=1 read=2 write=3 status=4 timeout=5 p50_us=900 p99_us=2500\n"
	got, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 100000, Duration: 5 * time.Second, Bytes: 1300000, Errors: 15,
		P50: 900 * time.Microsecond, P99: 2500 * time.Microsecond}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if rps := got.RPS(); rps != 20000 {
		t.Errorf("RPS: got %v, want %v", rps, 20000.0)
	}
	for _, bad := range []string{"Requests/sec: 1\n", "WRKRESULT requests=1\n", "WRKRESULT requests=x duration_us=1\n"} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("parseWrk(%q): got no error, want one", bad)
		}
	}
}

func TestMedianAndQuantile(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd: got %v, want %v", got, 2.0)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even: got %v, want %v", got, 2.5)
	}
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}} {
		if got := quantile(lat, c.q); got != c.want {
			t.Errorf("quantile(%v): got %v, want %v", c.q, got, c.want)
		}
	}
}

func TestSplitByWindows(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	hits := []hit{
		{Start: at(0), Latency: time.Millisecond},
		{Start: at(150), Latency: 9 * time.Millisecond, Failed: true},
		{Start: at(200), Latency: 7 * time.Millisecond},
		{Start: at(400), Latency: 2 * time.Millisecond},
		{Start: at(600), Latency: 5 * time.Millisecond},
		{Start: at(620), Latency: 3 * time.Millisecond},
	}
	r := splitByWindows(hits, []window{{Start: at(100), End: at(200)}}, []window{{Start: at(550), End: at(650)}})
	if r.Window.Requests != 2 || r.Window.Failed != 1 || r.Window.P99 != 9*time.Millisecond {
		t.Errorf("window: got %+v, want 2 requests, 1 failed, p99 9ms", r.Window)
	}
	if r.Steady.Requests != 2 || r.Steady.Failed != 0 || r.Steady.P99 != 2*time.Millisecond {
		t.Errorf("steady: got %+v, want 2 requests, 0 failed, p99 2ms", r.Steady)
	}
	// Slower than twice the steady p99 (4ms): both deploy-window hits.
	if r.Slow != 2 {
		t.Errorf("slow in deploy windows: got %d, want 2", r.Slow)
	}
	wantAt := []slowHit{{Window: 0, AtMS: 50, LatencyMS: 9, WindowMS: 100}, {Window: 0, AtMS: 100, LatencyMS: 7, WindowMS: 100}}
	if d := cmp.Diff(wantAt, r.SlowAt); d != "" {
		t.Errorf("slow requests placed in their windows (-want +got):\n%s", d)
	}
	want := &controlResult{Swaps: 1, Span: 100 * time.Millisecond, Slow: 1,
		Window: latencySummary{Requests: 2, P50: 3 * time.Millisecond, P99: 5 * time.Millisecond}}
	if d := cmp.Diff(want, r.Control); d != "" {
		t.Errorf("control (-want +got):\n%s", d)
	}
	if r := splitByWindows(hits, []window{{Start: at(100), End: at(200)}}, nil); r.Control != nil || r.Steady.Requests != 4 {
		t.Errorf("no control windows: got control %+v and %d steady requests, want none and 4", r.Control, r.Steady.Requests)
	}
	var inWindow []int64
	for _, b := range r.Timeline {
		if b.InWindow {
			inWindow = append(inWindow, b.OffsetMS)
		}
	}
	if d := cmp.Diff([]int64{100, 200}, inWindow); d != "" {
		t.Errorf("timeline buckets in the window (-want +got):\n%s", d)
	}
}

func TestOpenIdle(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Hello, World!"))
	}))
	t.Cleanup(srv.Close)
	conns, err := openIdle(context.Background(), srv.URL, 20)
	t.Cleanup(func() { closeAll(conns) })
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 20 {
		t.Errorf("connections: got %d, want %d", len(conns), 20)
	}
}

func TestOpenIdleRefusesClosingTarget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	}))
	t.Cleanup(srv.Close)
	conns, err := openIdle(context.Background(), srv.URL, 3)
	t.Cleanup(func() { closeAll(conns) })
	if err == nil || !strings.Contains(err.Error(), "closed it") {
		t.Errorf("got error %v, want one saying the target closed the connection", err)
	}
}

func TestMarkdownRatiosAndGoals(t *testing.T) {
	ts := []target{{Name: "direct"}, {Name: "cutover"}, {Name: "nginx"}, {Name: bareNginx}}
	r := newResults(ts, 3, 5*time.Second, 2000)
	for _, rps := range []float64{40000, 41000, 39000} {
		r.addTP("get", "direct", tpSample{RPS: rps, CPUus: 20})
	}
	// Medians: 18000 and 20000, from rounds that disagree.
	for i, rps := range []float64{18000, 15000, 19000} {
		r.addTP("get", "cutover", tpSample{RPS: rps, CPUus: 30, Syscalls: 6})
		r.addTP("get", "nginx", tpSample{RPS: []float64{20000, 24000, 19000}[i], CPUus: 25})
		r.addTP("get", bareNginx, tpSample{RPS: []float64{22500, 25000, 19000}[i], CPUus: 24})
	}
	r.Idle["cutover"] = idleSample{Conns: 1000, BeforeKiB: 10240, AtKiB: 30720, PeakKiB: 40960}
	r.Idle["nginx"] = idleSample{Conns: 1000, BeforeKiB: 10240, AtKiB: 10240, PeakKiB: 10240}
	var b strings.Builder
	r.writeMarkdown(&b)
	md := b.String()
	for _, want := range []string{
		"| small GET, keep-alive (13 B) | cutover | 18000 | 0.45× | 0.90× | 30.0 | 1.20× | 0 |",
		"| cutover | 10.0 MiB | 30.0 MiB | 20.5 | 3.00× | 40.0 MiB | 4.00× |",
		"small GET req/s, cutover / nginx = 0.90 (goal ≥ 0.80): met; against nginx-bare (no forwarding headers): 0.80",
		"small GET CPU per request, cutover / nginx = 1.20 (goal ≤ 1.50): met; against nginx-bare: 1.25",
		"| small GET, keep-alive (13 B) | nginx-bare | 22500 | 0.56× | 1.12× | 24.0 | 0.96× | 0 |",
		"RSS with idle connections, cutover / nginx = 3.00 (goal ≤ 2.00): **not met**",
		"Small GET, each round (req/s, cutover / nginx): 18000 / 20000 = 0.90×; 15000 / 24000 = 0.62×; 19000 / 19000 = 1.00×.",
		"Small GET, each round (req/s, cutover / nginx-bare): 18000 / 22500 = 0.80×; 15000 / 25000 = 0.60×; 19000 / 19000 = 1.00×.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q; got:\n%s", want, md)
		}
	}
}

func TestFixedRate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusBadGateway)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)

	s := summarize(fixedRate(context.Background(), srv.URL+"/", 200, 250*time.Millisecond))
	if s.Requests < 40 || s.Requests > 60 || s.Failed != 0 {
		t.Errorf("ok target: got %d requests, %d failed; want about 50, none failed", s.Requests, s.Failed)
	}
	s = summarize(fixedRate(context.Background(), srv.URL+"/fail", 200, 100*time.Millisecond))
	if s.Requests == 0 || s.Failed != s.Requests {
		t.Errorf("failing target: got %d failed of %d, want all failed", s.Failed, s.Requests)
	}

	// A cancelled context ends a long run early.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan int, 1)
	go func() { done <- len(fixedRate(ctx, srv.URL+"/", 100, time.Hour)) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("fixedRate did not return after its context ended")
	}
}

func TestParseCPUSteal(t *testing.T) {
	stat := "cpu  2215291 1223 2573721 5611297 43587 0 762633 61646 7 9\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
	steal, total, err := parseCPUSteal(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(2215291 + 1223 + 2573721 + 5611297 + 43587 + 0 + 762633 + 61646); steal != 61646 || total != want {
		t.Errorf("got steal %d, total %d; want 61646, %d", steal, total, want)
	}
	for _, bad := range []string{"", "cpu 1 2 3\n", "intr 1 2 3 4 5 6 7 8 9\n", "cpu 1 2 3 4 5 6 7 x 9\n"} {
		if _, _, err := parseCPUSteal(bad); err == nil {
			t.Errorf("parseCPUSteal(%q): got no error, want one", bad)
		}
	}
}

func TestParseStall(t *testing.T) {
	s, err := parseStall("1 1795405679088309598 3093910")
	if err != nil || s.At.UnixNano() != 1795405679088309598 || s.Late != 3093910*time.Nanosecond {
		t.Fatalf("got %+v, %v", s, err)
	}
	for _, bad := range []string{"", "1 2", "x 1 2", "1 y 2", "1 2 z", "1 2 -3", "1 2 3 4"} {
		if _, err := parseStall(bad); err == nil {
			t.Errorf("parseStall(%q): got no error, want one", bad)
		}
	}
}

func TestSplitNoise(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// 10 s of load; deploy windows [1 s, 2 s] and [5 s, 6 s]; a control
	// window [3 s, 4 s]: 2 s inside deploy windows, 7 s outside all.
	deploys := []window{{Start: at(1000), End: at(2000)}, {Start: at(5000), End: at(6000)}}
	control := []window{{Start: at(3000), End: at(4000)}}
	stalls := []stall{
		{at(1500), 3 * time.Millisecond},    // deploy window, ≥ 2 ms
		{at(5100), 1500 * time.Microsecond}, // deploy window, ≥ 1 ms only
		{at(5200), 600 * time.Microsecond},  // deploy window, under 1 ms
		{at(3500), 9 * time.Millisecond},    // control window: neither
		{at(8000), 2 * time.Millisecond},    // outside, ≥ 2 ms
		// Woken outside (counted there), but it began inside the second
		// deploy window: that window's longest.
		{at(6010), 20 * time.Millisecond},
		{at(-100), 50 * time.Millisecond},  // before the load: ignored
		{at(10100), 50 * time.Millisecond}, // after it: ignored
	}
	r := splitNoise(stalls, deploys, control, t0, at(10000))
	want := noiseResult{
		InWindows1ms: 1, InWindows2ms: 0.5, Outside1ms: 2.0 / 7, Outside2ms: 2.0 / 7, Longest: 20 * time.Millisecond,
		WindowLongest: []time.Duration{3 * time.Millisecond, 20 * time.Millisecond},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
}

func TestParseRealtime(t *testing.T) {
	for line, want := range map[string][2]bool{
		"# realtime 2 of 2": {true, true},
		"# realtime 1 of 2": {false, true},
		"# realtime 0 of 0": {false, false},
		"1 2 3":             {false, false},
		"# realtime x of 2": {false, false},
	} {
		all, ok := parseRealtime(line)
		if [2]bool{all, ok} != want {
			t.Errorf("parseRealtime(%q) = %v, %v; want %v", line, all, ok, want)
		}
	}
}

func TestSplitLoadGC(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	deploys := []window{{Start: at(1000), End: at(2000)}, {Start: at(5000), End: at(6000)}}
	control := []window{{Start: at(3000), End: at(4000)}}
	gcs := []gcPause{
		{at(-100), 9 * time.Millisecond},   // before the load: ignored
		{at(1500), 300 * time.Microsecond}, // deploy window
		{at(5999), 200 * time.Microsecond}, // deploy window
		{at(3500), 2 * time.Millisecond},   // control window
		{at(8000), 100 * time.Microsecond}, // outside
		{at(10001), 9 * time.Millisecond},  // after it: ignored
	}
	r := splitLoadGC(gcs, deploys, control, t0, at(10000))
	want := loadGCResult{Total: 4, InWindows: 2, InControl: 1, Longest: 2 * time.Millisecond}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
}

func TestGCPauses(t *testing.T) {
	before := time.Now()
	n := numGC()
	runtime.GC()
	runtime.GC()
	gcs := gcPauses(n)
	if len(gcs) < 2 {
		t.Fatalf("gcPauses after two collections: %d, want at least 2", len(gcs))
	}
	for _, g := range gcs {
		if g.End.Before(before) || g.End.After(time.Now()) || g.Pause <= 0 {
			t.Errorf("collection %+v: not between %v and now, or no pause", g, before)
		}
	}
	if got := gcPauses(numGC()); len(got) != 0 {
		t.Errorf("gcPauses of no new collection: %d", len(got))
	}
}

func TestTuneLoadGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	if got := tuneLoadGC(""); got != loadGCPercent {
		t.Errorf("tuneLoadGC(\"\") = %d, want %d", got, loadGCPercent)
	}
	debug.SetGCPercent(150)
	if got := tuneLoadGC("150"); got != 150 {
		t.Errorf("tuneLoadGC with GOGC set = %d, want the setting in force, 150", got)
	}
}

func TestStepLines(t *testing.T) {
	var s stepLines
	// Lines arrive in pieces; only "✓" lines are steps.
	for _, p := range []string{"  ✓ lock         0ms  deploy #1\n  ✓ prep", "are     15ms  release x\n", "    a remark\n  ✗ boot   1ms  x\n", "  ✓ finish  19ms  current → x\ndeploy: x is live (280ms)\n"} {
		if _, err := s.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, st := range s.steps {
		names = append(names, st.Name)
	}
	if d := cmp.Diff([]string{"lock", "prepare", "finish"}, names); d != "" {
		t.Errorf("steps (-want +got):\n%s", d)
	}
	if !strings.HasSuffix(s.out.String(), "is live (280ms)\n") {
		t.Errorf("output not kept whole: %q", s.out.String())
	}
}

func TestBySteps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	steps := func(base int) []stepEnd {
		return []stepEnd{{"lock", at(base + 10)}, {"boot", at(base + 110)}, {"finish", at(base + 130)}}
	}
	ws := []window{
		{Start: at(0), End: at(140), Steps: steps(0)},
		{Start: at(1000), End: at(1150), Steps: steps(1000)},
	}
	for ms, want := range map[int]string{0: "lock", 10: "lock", 11: "boot", 1110: "boot", 1120: "finish", 135: afterSteps} {
		w := ws[0]
		if ms >= 1000 {
			w = ws[1]
		}
		if got := w.stepAt(at(ms)); got != want {
			t.Errorf("stepAt(%d ms) = %q, want %q", ms, got, want)
		}
	}
	if got := (window{Start: at(0), End: at(10)}).stepAt(at(5)); got != "" {
		t.Errorf("stepAt in a window without steps = %q, want \"\"", got)
	}
	slow := []slowHit{{Step: "boot"}, {Step: "boot"}, {Step: "boot"}, {Step: afterSteps}}
	want := []stepSlow{
		{Step: "lock", PerDeploy: 0, MeanMS: 10},
		{Step: "boot", PerDeploy: 1.5, MeanMS: 100},
		{Step: "finish", PerDeploy: 0, MeanMS: 20},
		{Step: afterSteps, PerDeploy: 0.5, MeanMS: 15},
	}
	if d := cmp.Diff(want, bySteps(slow, ws)); d != "" {
		t.Errorf("bySteps (-want +got):\n%s", d)
	}
	if got := bySteps(nil, []window{{Start: at(0), End: at(10)}}); got != nil {
		t.Errorf("bySteps of windows without steps = %+v, want nil", got)
	}
}

func TestWindowStalls(t *testing.T) {
	if got := windowStalls(nil, nil, 0); got != "" {
		t.Errorf("no windows: got %q, want nothing", got)
	}
	small := []time.Duration{time.Millisecond, 9 * time.Millisecond}
	if got := windowStalls(small, nil, 0); !strings.Contains(got, "No stall of 10 ms or more") {
		t.Errorf("only small stalls: got %q", got)
	}
	longest := []time.Duration{12 * time.Millisecond, 0, 132 * time.Millisecond, 9 * time.Millisecond}
	slowAt := []slowHit{{Window: 2}, {Window: 2}, {Window: 2}, {Window: 0}, {Window: 3}}
	got := windowStalls(longest, slowAt, 5)
	for _, want := range []string{"overlapped 2 of the 4 deploy windows", "the longest, 132.000 ms, overlapped window 2", "held 3 of the 5 slow requests"} {
		if !strings.Contains(got, want) {
			t.Errorf("got %q, want it to contain %q", got, want)
		}
	}
}

func TestParseH2load(t *testing.T) {
	out := `starting benchmark...
spawning thread #0: 50 total client(s). Timing-based test with 0s of warm-up time and 5s of main duration for measurements.
Application protocol: h2
finished in 5.00s, 12345.60 req/s, 1.23MB/s
requests: 61728 total, 61730 started, 61728 done, 61720 succeeded, 8 failed, 3 errored, 1 timeout
status codes: 61720 2xx, 0 3xx, 2 4xx, 6 5xx
traffic: 6.17MB (6469331) total, 1.23MB (1291234) headers (space savings 90.00%), 802.46KB (821729) data
`
	r, err := parseH2load(out, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 61728 || r.Duration != 5*time.Second || r.Errors != 8+3+1+2+6 || r.Bytes != 6469331 {
		t.Errorf("got %+v", r)
	}
	if _, err := parseH2load(strings.Replace(out, "protocol: h2", "protocol: http/1.1", 1), time.Second); err == nil ||
		!strings.Contains(err.Error(), "http/1.1") {
		t.Errorf("a run over HTTP/1.1: err = %v, want one naming http/1.1", err)
	}
	if _, err := parseH2load("Application protocol: h2\n", time.Second); err == nil {
		t.Error("no summary: no error")
	}
}

func TestTLSScenariosOnTLSTargets(t *testing.T) {
	plain := target{Name: "nginx", URL: "http://127.0.0.1:1"}
	tls := target{Name: "nginx-tls", URL: "https://127.0.0.1:2"}
	if plain.in("tls-get") || !plain.in("get") || tls.in("get") || !tls.in("tls-h2") {
		t.Error("TLS scenarios must run on https targets only, the others on http targets only")
	}
}
