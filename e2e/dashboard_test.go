package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// chromium returns the path of a Chromium to drive, skipping the test
// without one (failing it under CI=true, whose .ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: .ci/run installs Debian's chromium package")
	}
	t.Skip("no chromium on PATH (apt-get install chromium)")
	return ""
}

// pageView is what the dashboard shows of the app, read from its DOM.
type pageView struct {
	Weights map[string]int `json:"weights"`
	Steps   []string       `json:"steps"`
	Summary string         `json:"summary"`
}

const readPage = `(() => {
  const s = document.querySelector('section.app[data-app="e2e"]');
  if (!s) return JSON.stringify({});
  const bar = s.querySelector('[data-weights]');
  return JSON.stringify({
    weights: bar ? JSON.parse(bar.dataset.weights) : {},
    steps: [...s.querySelectorAll('.steps div')].map(d => d.textContent),
    summary: (s.querySelector('.summary') || {}).textContent || "",
  });
})()`

// TestDashboardShowsCanaryInChromium opens the dashboard in headless
// Chromium through `cutover dashboard`'s one-time URL and watches a
// canary deploy under load: the page shows its steps as they happen and
// the weights move through the canary step; its pause and resume
// buttons, confirmed in the page's dialog, pause and resume the canary
// (CSRF header, cookie, same origin). With DASHBOARD_PNG set, it
// saves a screenshot taken during the canary there (docs/dashboard.png).
func TestDashboardShowsCanaryInChromium(t *testing.T) {
	browser := chromium(t)
	e := newEnv(t, settings{instances: 2, extra: `
[deploy]
strategy = "canary"
steps = ["25%", "50%"]
step_time = "3s"
min_requests = 10
`})
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	old := e.status().Active
	out, errOut, code := e.run("dashboard", "--no-open")
	login := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(login, "http://127.0.0.1:") || !strings.Contains(login, "/?token=") {
		t.Fatalf("cutover dashboard: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.WindowSize(1280, 1100))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	defer tcancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(login),
		chromedp.WaitVisible(chromedp.CSS(`section.app[data-app="e2e"] [data-weights]`))); err != nil {
		t.Fatalf("open %s in chromium: %v", login, err)
	}
	view := func() pageView {
		t.Helper()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](readPage))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		var v pageView
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			t.Fatalf("page view %q: %v", raw, err)
		}
		return v
	}
	if v := view(); v.Weights[old] == 0 || len(v.Weights) != 1 {
		t.Fatalf("before the canary the page shows weights %v, want all on %s", v.Weights, old)
	}

	gen := load.Start(load.Options{URL: e.url("/"), Rate: 100, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "dashboard")
	done := make(chan error, 1)
	go func() {
		_, _, err := e.deploy(deploy.Request{Source: v2})
		done <- err
	}()
	// press clicks an action's button and confirms it in the page's
	// dialog, as an operator would, and returns the page's answer.
	press := func(action string) string {
		t.Helper()
		js := `document.querySelector('section.app[data-app="e2e"] button[data-action="` + action + `"]').click();
document.getElementById('confirm-ok').click(); true`
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil {
			t.Fatalf("press %s: %v", action, err)
		}
		for waitFor := time.Now().Add(10 * time.Second); time.Now().Before(waitFor); time.Sleep(100 * time.Millisecond) {
			ans, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('section.app[data-app="e2e"] .answer').textContent`))
			if err != nil {
				t.Fatalf("read the answer to %s: %v", action, err)
			}
			if ans != "" && !strings.HasSuffix(ans, "…") {
				return ans
			}
		}
		t.Fatalf("no answer to %s in the page within 10 s", action)
		return ""
	}
	paused := false
	var shares []string // the canary's share, each time it changed
	var last pageView
	shot := os.Getenv("DASHBOARD_PNG")
	deadline := time.After(60 * time.Second)
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("canary deploy: %v", err)
			}
			finished = true
		case <-deadline:
			t.Fatal("canary deploy not done within 60 s")
		case <-time.After(200 * time.Millisecond):
		}
		v := view()
		total, canary := 0, 0
		for rel, w := range v.Weights {
			total += w
			if rel != old {
				canary = w
			}
		}
		if total > 0 && canary > 0 && canary < total {
			s := fmt.Sprintf("%d%%", 100*canary/total)
			if len(shares) == 0 || shares[len(shares)-1] != s {
				shares = append(shares, s)
				if shot != "" && len(shares) == 2 {
					time.Sleep(1500 * time.Millisecond) // a few chart points of both releases
					png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
					if err != nil {
						t.Errorf("screenshot: %v", err)
					} else if err := os.WriteFile(shot, png, 0o644); err != nil {
						t.Errorf("write %s: %v", shot, err)
					}
				}
			}
		}
		if !paused && len(shares) == 1 {
			// Pause the canary from the page, see it paused, resume it.
			paused = true
			ans := press("pause")
			t.Logf("pause: %s", ans)
			if strings.HasPrefix(ans, "refused") || strings.HasPrefix(ans, "failed") {
				t.Errorf("pause from the page: %s", ans)
			}
			for waitFor := time.Now().Add(5 * time.Second); !strings.Contains(view().Summary, "PAUSED") && time.Now().Before(waitFor); {
				time.Sleep(200 * time.Millisecond)
			}
			if s := view().Summary; !strings.Contains(s, "PAUSED") {
				t.Errorf("after pause the page says %q, want PAUSED", s)
			}
			if ans := press("resume"); strings.HasPrefix(ans, "refused") || strings.HasPrefix(ans, "failed") {
				t.Errorf("resume from the page: %s", ans)
			}
		}
		last = v
	}
	if !paused {
		t.Error("never saw the canary's first step to pause it")
	}
	rep := gen.Stop()
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	if len(shares) < 2 || shares[0] != "25%" || shares[1] != "50%" {
		t.Errorf("the page showed the canary's share %v, want 25%% then 50%%", shares)
	}
	// The steps reach the page as they happen: by the result's arrival
	// the list holds the shift and the result.
	waitFor := time.Now().Add(5 * time.Second)
	for !strings.Contains(strings.Join(last.Steps, "\n"), "✓") && time.Now().Before(waitFor) {
		time.Sleep(200 * time.Millisecond)
		last = view()
	}
	steps := strings.Join(last.Steps, "\n")
	for _, want := range []string{"prepare start", "boot ok", "shift start", "shift ok", "✓ " + e.status().Active} {
		if !strings.Contains(steps, want) {
			t.Errorf("the page's steps lack %q:\n%s", want, steps)
		}
	}
	// The next snapshot, within a second, shows the switch done.
	live := e.status().Active
	for waitFor := time.Now().Add(5 * time.Second); (len(last.Weights) != 1 || last.Weights[live] == 0) && time.Now().Before(waitFor); {
		time.Sleep(200 * time.Millisecond)
		last = view()
	}
	if v := last.Weights; len(v) != 1 || v[live] == 0 {
		t.Errorf("after the deploy the page shows weights %v, want all on %s", v, live)
	}
}
