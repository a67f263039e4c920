package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/canary"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/traffic"
)

// criteria are what a new release is judged by, from [deploy].
func (r *Run) criteria() canary.Criteria {
	d := r.cfg.Deploy
	return canary.Criteria{Confidence: d.Confidence, MinLatencyEffect: d.MinLatencyEffect, MinErrorEffect: d.MinErrorEffect,
		MaxErrorRate: d.MaxErrorRate, MinRequests: d.MinRequests}
}

// describeWindow is "120 requests, 0.8% errors, p99 4ms".
func describeWindow(w traffic.WindowStats) string {
	return fmt.Sprintf("%d requests, %.1f%% errors, p99 %s", w.Requests, 100*w.ErrorRate, w.P99.Round(100*time.Microsecond))
}

// preview exposes the booted release to requests that carry a new
// random token, and waits for the operator. The token lives as long as
// the preview: in memory only, since a daemon that restarts ends the
// deploy (Recover) and stops the preview's instances with it.
func (r *Run) preview(ctx context.Context, newID string) (string, error) {
	e, cfg := r.e, r.cfg
	token := traffic.NewPreviewToken()
	e.px.SetPreview(newID, token)
	defer e.px.SetPreview("", "")
	r.setPreview(token)
	defer r.setPreview("")
	r.setDetail("preview")
	links := []string{previewLink(cfg.Proxy.Listen, token)}
	if cfg.Proxy.PreviewListen != "" {
		links = append(links, previewLink(cfg.Proxy.PreviewListen, token))
	}
	r.event(Event{Type: "preview", Release: newID, PreviewToken: token, PreviewLinks: links, Message: fmt.Sprintf(
		"preview of %s is ready for requests with its token %s: open %s (the link sets cookie %s), or send header %q; other traffic stays on %s. `cutover promote` continues the deploy, `cutover abort` stops it (by itself after %s)",
		newID, token, strings.Join(links, " or "), traffic.PreviewCookie, traffic.PreviewHeader+": "+token, orNone(r.from), cfg.Deploy.PreviewTimeout.Duration)})
	switch a, _ := r.wait(ctx, cfg.Deploy.PreviewTimeout.Duration, nil); a {
	case ActionPromote:
		return "promoted", nil
	case ActionAbort:
		return "", fmt.Errorf("preview of %s %s; its instances were stopped and %s kept serving: %w", newID, abortedBy(ctx), orNone(r.from), ErrAborted)
	default:
		return "", fmt.Errorf("preview of %s expired after deploy.preview_timeout (%s) without `cutover promote`: %w", newID, cfg.Deploy.PreviewTimeout.Duration, ErrAborted)
	}
}

// previewLink is the link that opens the preview behind token on the
// proxy listener addr (host:port; an empty or unspecified host is
// loopback): http://127.0.0.1:8080/?cutover_preview=TOKEN.
func previewLink(addr, token string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	hp := host
	if port != "" {
		hp = net.JoinHostPort(host, port)
	}
	return "http://" + hp + "/?" + traffic.PreviewParam + "=" + token
}

// abortedBy says who stopped a rollout: the operator, or the daemon
// shutting down (wait reports both as ActionAbort).
func abortedBy(ctx context.Context) string {
	if ctx.Err() != nil {
		return "aborted because the daemon is stopping"
	}
	return "aborted by the operator"
}

func orNone(release string) string {
	if release == "" {
		return "(no release)"
	}
	return release
}

// canary moves traffic to newID in the configured steps, judging each
// against the old release over the same window. A failed step sends all
// traffic back at once.
func (r *Run) canary(ctx context.Context, newID string) error {
	e, old := r.e, r.from
	if old == "" {
		return r.step(StepSwitch, func() (string, error) { return r.switchTo(ctx, newID) })
	}
	crit := r.criteria()
	stepTime := r.cfg.Deploy.StepTime.Duration
	promoted := false
	for i, pct := range r.cfg.Deploy.StepPercents {
		if promoted {
			break
		}
		r.setShift(fmt.Sprintf("canary %d%%", pct), i+1, len(r.cfg.Deploy.StepPercents))
		err := r.step(StepShift, func() (string, error) {
			e.px.SetWeights(map[string]int{newID: pct, old: 100 - pct})
			start := time.Now()
			judge := func() canary.Verdict {
				d := time.Since(start)
				return canary.Judge(e.px.Window(newID, d), e.px.Window(old, d), crit)
			}
			var failed canary.Verdict
			early := func() string {
				if v := judge(); v.Enough && !v.OK {
					failed = v
					return "fail"
				}
				return ""
			}
			for attempt := 0; ; attempt++ {
				a, why := r.wait(ctx, stepTime, early)
				switch {
				case a == ActionAbort:
					return "", r.backTo(ctx, old, fmt.Errorf("canary %d%%: %s", pct, abortedBy(ctx)))
				case a == ActionPromote:
					promoted = true
					return fmt.Sprintf("%d%%: promoted by the operator, skipping to 100%%", pct), nil
				case why != "":
					return "", r.backTo(ctx, old, fmt.Errorf("canary %d%%: %s", pct, failed.Reason))
				}
				v := judge()
				switch {
				case v.Enough && !v.OK:
					return "", r.backTo(ctx, old, fmt.Errorf("canary %d%%: %s", pct, v.Reason))
				case v.Enough:
					return fmt.Sprintf("%d%%: new %s; old %s; %s", pct, describeWindow(v.Canary), describeWindow(v.Baseline), v.Reason), nil
				case attempt == 0:
					r.info("canary %d%%: only %d requests so far (deploy.min_requests = %d); waiting one more step_time", pct, v.Canary.Requests, crit.MinRequests)
				default:
					r.info("canary %d%%: too little traffic to judge (%d < %d requests); moving on", pct, v.Canary.Requests, crit.MinRequests)
					return fmt.Sprintf("%d%%: not judged (%s)", pct, describeWindow(v.Canary)), nil
				}
			}
		})
		if errors.Is(err, errOperatorAbort) {
			if i == 0 {
				// Aborted while held before the first step: no traffic
				// moved, so nothing goes back; the deploy is aborted.
				return err
			}
			// Aborted while held before this step: the last one's weights
			// still stand.
			return r.backTo(ctx, old, fmt.Errorf("canary %d%%: %s before the step began", pct, abortedBy(ctx)))
		}
		if err != nil {
			return err
		}
	}
	r.setDetail("100%")
	err := r.step(StepSwitch, func() (string, error) { return r.switchTo(ctx, newID) })
	if errors.Is(err, errOperatorAbort) {
		return r.backTo(ctx, old, fmt.Errorf("canary: %s before the switch", abortedBy(ctx)))
	}
	return err
}

// backTo sends all traffic back to release old at once and returns the
// reason as a rolled-back error. The caller drains and stops the new one.
func (r *Run) backTo(ctx context.Context, old string, reason error) error {
	e := r.e
	r.stop("going back to " + old)
	e.px.SetActive(old)
	if err := e.store.SetActive(context.WithoutCancel(ctx), old, time.Now()); err != nil {
		e.log.Error("record rollback", "release", old, "err", err)
	}
	r.info("all traffic back on %s", old)
	return fmt.Errorf("%w: %v; %s kept serving", errRolledBack, reason, old)
}

// watch keeps the old release warm for d after the switch and goes back to
// it at once if the new release breaks the error bound.
func (r *Run) watch(ctx context.Context, newID string, d time.Duration) (string, error) {
	e, old := r.e, r.from
	r.setDetail("watch")
	crit := r.criteria()
	start := time.Now()
	var failed canary.Verdict
	action, why := r.wait(ctx, d, func() string {
		// No baseline: the old release gets no traffic now, so only the
		// absolute bounds apply.
		if v := canary.Judge(e.px.Window(newID, time.Since(start)), traffic.WindowStats{}, crit); v.Enough && !v.OK {
			failed = v
			return "fail"
		}
		return ""
	})
	reason := ""
	switch {
	case action == 0 && why == "":
		w := e.px.Window(newID, time.Since(start))
		return fmt.Sprintf("%s watched: %s", d, describeWindow(w)), nil
	case action == ActionPromote:
		return "ended early by the operator", nil
	case action == ActionAbort:
		reason = abortedBy(ctx) + " during the watch"
	default:
		reason = "watch: " + failed.Reason
	}
	if old == "" || len(e.instancesOf(old, false)) == 0 {
		return "", fmt.Errorf("%s, and no instance of the previous release is left to go back to: run `cutover rollback`", reason)
	}
	return "", r.backTo(ctx, old, fmt.Errorf("%s", reason))
}

// rolling replaces the old release's instances batch by batch: boot a
// batch of new ones, give them their share of traffic, then drain and stop
// as many old ones. The app never has fewer than `instances` healthy.
func (r *Run) rolling(ctx context.Context, newID string) error {
	e, old, n := r.e, r.from, r.app.Instances
	batch := r.cfg.Deploy.BatchCount
	if p := r.cfg.Deploy.BatchPercent; p > 0 {
		batch = (n*p + 99) / 100
	}
	batch = max(1, min(batch, n))
	total := (n + batch - 1) / batch
	olds := e.instancesOf(newID, true)
	sort.Slice(olds, func(i, j int) bool { return olds[i].ID() < olds[j].ID() })
	moved := 0
	for k := 1; moved < n; k++ {
		b := min(batch, n-moved)
		r.setShift(fmt.Sprintf("batch %d/%d", k, total), k, total)
		if have := len(e.instancesOf(newID, false)); have < moved+b {
			err := r.step(StepBoot, func() (string, error) {
				ms, err := e.boot(ctx, r, newID, r.app, moved+b-have, have+1, r.aborting())
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("batch %d/%d: %d instance(s) healthy", k, total, len(ms)), nil
			})
			if err != nil {
				if moved == 0 {
					return err // nothing moved yet: a plain failed (or aborted) boot
				}
				if errors.Is(err, errOperatorAbort) {
					return r.rollingBack(ctx, newID, fmt.Errorf("%s after batch %d/%d (batch %d was booting)", abortedBy(ctx), k-1, total, k))
				}
				return r.rollingBack(ctx, newID, fmt.Errorf("batch %d/%d did not boot: %v", k, total, err))
			}
		}
		moved += b
		var retiring []managed
		if len(olds) > 0 {
			cut := min(b, len(olds))
			retiring, olds = olds[:cut], olds[cut:]
		}
		err := r.step(StepShift, func() (string, error) {
			weights := map[string]int{newID: moved}
			if old != "" && n-moved > 0 {
				weights[old] = n - moved
			}
			e.px.SetWeights(weights)
			if _, err := e.drain(ctx, retiring, drainHow{timeout: r.config().Proxy.DrainTimeout.Duration, batch: true}); err != nil {
				return "", err
			}
			return fmt.Sprintf("batch %d/%d: %d/%d instances on %s", k, total, moved, n, newID), nil
		})
		if errors.Is(err, errOperatorAbort) {
			// Held before this batch's shift: its instances are up, the
			// weights still the last batch's.
			if k == 1 {
				// No traffic moved and no old instance stopped: the
				// deploy is aborted, not rolled back.
				return err
			}
			return r.rollingBack(ctx, newID, fmt.Errorf("%s after batch %d/%d", abortedBy(ctx), k-1, total))
		}
		if err != nil {
			return err
		}
		if moved < n {
			// The operator's word between batches; a pause holds the
			// next step (Run.enter).
			switch {
			case r.aborted():
				return r.rollingBack(ctx, newID, fmt.Errorf("%s after batch %d/%d", abortedBy(ctx), k, total))
			case r.takePromote():
				r.info("promoted: moving the remaining instances at once")
				batch = n
			}
		}
	}
	err := r.step(StepSwitch, func() (string, error) { return r.switchTo(ctx, newID) })
	if errors.Is(err, errOperatorAbort) {
		return r.rollingBack(ctx, newID, fmt.Errorf("%s after the last batch", abortedBy(ctx)))
	}
	return err
}

// rollingBack restores the old release to its full size, sends it all
// traffic, and reports a rolled-back error.
func (r *Run) rollingBack(ctx context.Context, newID string, reason error) error {
	e, old := r.e, r.from
	if old == "" {
		return fmt.Errorf("%w: %v", errRolledBack, reason)
	}
	have := e.instancesOf(old, false)
	if missing := r.app.Instances - len(have); missing > 0 {
		rec, err := e.store.Release(ctx, old)
		if err != nil {
			return err
		}
		app, err := decodeAppConfig(rec.ConfigJSON)
		if err != nil {
			return err
		}
		next := 1
		for _, m := range have {
			next = max(next, instance.Number(m.ID(), old)+1)
		}
		if _, err := e.boot(ctx, r, old, app, missing, next, nil); err != nil {
			return fmt.Errorf("%v; and the old release could not be brought back to full size: %w", reason, err)
		}
	}
	return r.backTo(ctx, old, reason)
}
