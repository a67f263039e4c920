package e2e

import (
	"bufio"

	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// scrapeMetrics returns the body of GET /metrics.
func scrapeMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

var okRequests = regexp.MustCompile(`(?m)^cutover_http_requests_total\{app="e2e",code="2xx",release="([^"]+)"\} (\d+)$`)

// okByRelease returns each release's 2xx count in a scrape.
func okByRelease(out string) map[string]int {
	m := map[string]int{}
	for _, s := range okRequests.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(s[2])
		m[s[1]] = n
	}
	return m
}

// TestMetricsAndAccessLogDuringCanary scrapes /metrics during a canary
// under load and sees both releases' request counters move, then checks
// that the access log has lines of both releases, and that SIGUSR1 to the
// keeper opens it again after a rename (logrotate).
func TestMetricsAndAccessLogDuringCanary(t *testing.T) {
	mport := pickPort(t)
	e := newEnv(t, settings{instances: 2, extra: fmt.Sprintf(`
[deploy]
strategy = "canary"
steps = ["50%%"]
step_time = "4s"
min_requests = 10

[metrics]
listen = "127.0.0.1:%d"

[log]
access = "access.log"
`, mport)})
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	accessPath := filepath.Join(e.dir, "access.log")
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	old := e.status().Active
	gen := load.Start(load.Options{URL: e.url("/"), Rate: 100, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "canary")
	done := make(chan error, 1)
	go func() {
		_, _, err := e.deploy(deploy.Request{Source: v2})
		done <- err
	}()
	// Wait for the canary step, as /metrics tells it.
	var canary string
	inShift := regexp.MustCompile(`(?m)^cutover_deploy_in_progress\{app="e2e",kind="deploy",release="([^"]+)",step="shift",strategy="canary"\} 1$`)
	deadline := time.Now().Add(30 * time.Second)
	for canary == "" && time.Now().Before(deadline) {
		if m := inShift.FindStringSubmatch(scrapeMetrics(t, metricsURL)); m != nil {
			canary = m[1]
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if canary == "" {
		t.Fatalf("no canary step seen on /metrics within 30s; daemon log:\n%s", tail(e.daemonLog(), 20))
	}
	first := scrapeMetrics(t, metricsURL)
	time.Sleep(1500 * time.Millisecond)
	second := scrapeMetrics(t, metricsURL)
	a, b := okByRelease(first), okByRelease(second)
	for _, rel := range []string{old, canary} {
		if b[rel] <= a[rel] {
			t.Errorf("release %s: 2xx count %d then %d over 1.5s of a 50%% canary; want it to grow", rel, a[rel], b[rel])
		}
	}
	for _, series := range []string{
		`cutover_release_weight_ratio{app="e2e",release="` + canary + `"} 0.5`,
		`cutover_release_weight_ratio{app="e2e",release="` + old + `"} 0.5`,
		`cutover_deploy_strategy_step{app="e2e",release="` + canary + `"} 1`,
	} {
		if !strings.Contains(second, series+"\n") {
			t.Errorf("scrape during the canary lacks %s", series)
		}
	}
	if !regexp.MustCompile(`(?m)^cutover_instance_health_checks_total\{app="e2e",instance="[^"]+",release="` + regexp.QuoteMeta(canary) + `",result="pass"\} [1-9]`).MatchString(second) {
		t.Errorf("no passed health check of the canary counted on /metrics:\n%s", grepLines(second, "health_checks"))
	}
	if !regexp.MustCompile(`(?m)^cutover_instance_healthy\{app="e2e",instance="[^"]+",release="` + regexp.QuoteMeta(canary) + `"\} 1$`).MatchString(second) {
		t.Errorf("no healthy instance of the canary on /metrics")
	}
	if path, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = strings.NewReader(second)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("canary deploy: %v", err)
	}
	rep := gen.Stop()
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	after := scrapeMetrics(t, metricsURL)
	if !strings.Contains(after, `cutover_deploys_total{app="e2e",kind="deploy",outcome="ok"} 2`) {
		t.Errorf("after two deploys, cutover_deploys_total:\n%s", grepLines(after, "cutover_deploys_total"))
	}

	// The access log: lines of both releases, as many as requests.
	perRelease := map[string]int{}
	for _, line := range readAccessLog(t, accessPath, rep.Total.Requests) {
		perRelease[line.Release]++
		if line.Status != 200 || line.RequestID == "" || line.Instance == "" || line.Duration <= 0 {
			t.Errorf("access log line: %+v", line)
			break
		}
	}
	if perRelease[old] == 0 || perRelease[canary] == 0 {
		t.Errorf("access log lines by release: %v; want lines of %s and %s", perRelease, old, canary)
	}

	// logrotate: rename, SIGUSR1 to the keeper, which passes it on.
	if err := os.Rename(accessPath, accessPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := e.daemon.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(accessPath); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, _, _, err := get(e.url("/after-rotation")); err != nil {
		t.Fatal(err)
	}
	lines := readAccessLog(t, accessPath, 1)
	if len(lines) != 1 || lines[0].URI != "/after-rotation" {
		t.Errorf("after SIGUSR1 the new access log holds %+v; want the one request sent since", lines)
	}
}

// accessLine is the part of a JSON access log line the test reads.
type accessLine struct {
	RequestID string  `json:"request_id"`
	Release   string  `json:"release"`
	Instance  string  `json:"instance"`
	URI       string  `json:"uri"`
	Status    int     `json:"status"`
	Duration  float64 `json:"duration"`
}

// readAccessLog waits until path holds at least n lines and returns them.
func readAccessLog(t *testing.T, path string, n int) []accessLine {
	t.Helper()
	var lines []accessLine
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines = lines[:0]
		f, err := os.Open(path)
		if err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var l accessLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatalf("access log line is not JSON: %v: %s", err, sc.Text())
				}
				lines = append(lines, l)
			}
			f.Close()
		}
		if len(lines) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(lines) < n {
		t.Fatalf("%s has %d lines, want at least %d", path, len(lines), n)
	}
	return lines
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
