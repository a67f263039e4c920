package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/state"
)

// watchDeploys is how many past deploys each app's block lists.
const watchDeploys = 3

// watchGiveUp is how long `status --watch` goes on asking a daemon that
// does not answer: long enough for the keeper to start a daemon that died
// again, short enough that a stopped daemon ends the watch promptly.
const watchGiveUp = 5 * time.Second

// ANSI sequences of the terminal view: home + clear the screen, hide and
// show the cursor.
const (
	ansiClear      = "\x1b[H\x1b[2J"
	ansiHideCursor = "\x1b[?25l"
	ansiShowCursor = "\x1b[?25h"
)

// watchApp is one app in a watch snapshot: its status, its last deploys
// and the rates computed from the snapshot before.
type watchApp struct {
	Status  deploy.Status           `json:"status"`
	Deploys []state.Deploy          `json:"deploys"`
	Rates   map[string]releaseRates `json:"rates"`
}

// watchSnapshot is what `status --watch` shows at one time.
type watchSnapshot struct {
	At   time.Time  `json:"at"`
	Apps []watchApp `json:"apps"`
}

// releaseRates is one release's traffic between two snapshots.
type releaseRates struct {
	// ReqPerSec is the requests answered per second between the two
	// snapshots.
	ReqPerSec float64 `json:"req_per_s"`
	// ErrorRate is the share of those answered with a 5xx (0 without
	// requests).
	ErrorRate float64 `json:"error_rate"`
	// Reset: the release's counters went down (the daemon restarted
	// between the snapshots), so no rate is known for this interval.
	Reset bool `json:"reset,omitempty"`
}

// computeRates returns each release's rates in cur since prev, taken dt
// apart. A release absent from prev counts from zero (its counters start
// when it first serves). A counter lower than before means the daemon
// restarted in between: that release's rate is unknown (Reset), never
// negative; so is every release's when the two statuses' TrafficSince
// differ (another daemon counts now, maybe already past the old counts).
// Without prev (the first snapshot) there are no rates: nil.
func computeRates(prev *deploy.Status, cur deploy.Status, dt time.Duration) map[string]releaseRates {
	if prev == nil || dt <= 0 {
		return nil
	}
	out := map[string]releaseRates{}
	restarted := !prev.TrafficSince.Equal(cur.TrafficSince)
	for rel, c := range cur.Traffic {
		p := prev.Traffic[rel]
		if restarted || c.Requests < p.Requests || c.Status5xx < p.Status5xx {
			out[rel] = releaseRates{Reset: true}
			continue
		}
		n, e := c.Requests-p.Requests, c.Status5xx-p.Status5xx
		r := releaseRates{ReqPerSec: float64(n) / dt.Seconds()}
		if n > 0 {
			r.ErrorRate = float64(e) / float64(n)
		}
		out[rel] = r
	}
	return out
}

// watcher polls a daemon and draws what it says.
type watcher struct {
	c        *api.Client
	app      string // --app; "" = every app of the daemon
	interval time.Duration
	asJSON   bool
	terminal bool // redraw in place with ANSI; else one block per interval
	out      io.Writer
	now      func() time.Time
	giveUp   time.Duration // how long a daemon may not answer: watchGiveUp
}

// poll takes one snapshot of every app watched.
func (w *watcher) poll(ctx context.Context, prev *watchSnapshot) (*watchSnapshot, error) {
	names := []string{w.app}
	if w.app == "" {
		if all, err := w.c.Apps(ctx); err == nil && len(all) > 0 {
			names = all
		} else if errors.Is(err, api.ErrNoDaemon) {
			return nil, err
		}
	}
	snap := &watchSnapshot{At: w.now()}
	for _, n := range names {
		c := w.c.App(n)
		st, err := c.Status(ctx)
		if err != nil {
			return nil, err
		}
		ds, err := c.Deploys(ctx, watchDeploys)
		if err != nil {
			return nil, err
		}
		a := watchApp{Status: st, Deploys: ds}
		var before *deploy.Status
		var dt time.Duration
		if prev != nil {
			dt = snap.At.Sub(prev.At)
			for i := range prev.Apps {
				if prev.Apps[i].Status.App == st.App {
					before = &prev.Apps[i].Status
				}
			}
		}
		a.Rates = computeRates(before, st, dt)
		snap.Apps = append(snap.Apps, a)
	}
	return snap, nil
}

// run polls every interval until ctx ends (Ctrl-C: nil) or the daemon
// has not answered for watchGiveUp (an error saying so).
func (w *watcher) run(ctx context.Context) error {
	if w.terminal && !w.asJSON {
		fmt.Fprint(w.out, ansiHideCursor)
		defer fmt.Fprint(w.out, ansiShowCursor)
	}
	var prev *watchSnapshot
	lastAnswer := w.now()
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		pctx, cancel := context.WithTimeout(ctx, w.giveUp)
		snap, err := w.poll(pctx, prev)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if prev == nil {
				return err // nothing shown yet: say why at once
			}
			if w.now().Sub(lastAnswer) < w.giveUp {
				continue
			}
			return fmt.Errorf("the daemon has not answered since %s (%v); the watch ends: start it with `cutover serve`, then watch again",
				lastAnswer.Format("15:04:05"), err)
		}
		lastAnswer = snap.At
		switch {
		case w.asJSON:
			b, err := json.Marshal(snap)
			if err != nil {
				return fmt.Errorf("encode snapshot: %w", err)
			}
			fmt.Fprintf(w.out, "%s\n", b)
		case w.terminal:
			var sb strings.Builder
			renderWatch(&sb, snap, w.interval)
			fmt.Fprint(w.out, ansiClear+sb.String())
		default:
			if prev != nil {
				fmt.Fprintln(w.out)
			}
			renderWatch(w.out, snap, w.interval)
		}
		prev = snap
	}
}

// renderWatch writes one snapshot block: a header line, then per app its
// live release and deploy in flight, releases with weights and rates,
// instances, and the last deploys. Times are relative to snap.At, so a
// recorded snapshot renders the same at any time.
func renderWatch(w io.Writer, snap *watchSnapshot, interval time.Duration) {
	now := snap.At
	fmt.Fprintf(w, "cutover status --watch  %s  every %s  (Ctrl-C to stop)\n", now.Format("15:04:05"), interval)
	for _, a := range snap.Apps {
		st := a.Status
		fmt.Fprintln(w)
		live := st.Active
		if live == "" {
			live = "(none yet)"
		}
		fmt.Fprintf(w, "app %s  listen %s  live %s\n", st.App, st.Listen, live)
		if st.Degraded != "" {
			fmt.Fprintf(w, "DEGRADED: %s\n", st.Degraded)
		}
		if d := st.Deploy; d != nil {
			step := d.Step
			if d.Detail != "" {
				step += " (" + d.Detail + ")"
			}
			if d.Paused {
				step += ", PAUSED"
			}
			strategy := ""
			if d.Strategy != "" {
				strategy = " " + d.Strategy
			}
			fmt.Fprintf(w, "in flight: #%d %s%s of %s from %s, step %s, for %s\n", d.DeployID, d.Kind, strategy,
				d.Release, orDash(d.From), step, age(now, d.StartedAt))
		}
		renderReleases(w, a)
		if len(st.Instances) > 0 {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INSTANCE\tRELEASE\tSTATE\tHEALTH\tRESTARTS\tAGE")
			for _, in := range st.Instances {
				h := "unhealthy"
				if in.Healthy {
					h = "healthy"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", in.ID, in.Release, in.State, h, in.Restarts, age(now, in.StartedAt))
			}
			tw.Flush()
		}
		if len(a.Deploys) > 0 {
			fmt.Fprintln(w, "last deploys:")
			for _, d := range a.Deploys {
				took := ""
				if !d.FinishedAt.IsZero() {
					took = ", took " + age(d.FinishedAt, d.StartedAt)
					if t := d.FinishedAt.Sub(d.StartedAt); t < 10*time.Second {
						took = ", took " + t.Round(100*time.Millisecond).String()
					}
				}
				line := fmt.Sprintf("  #%d %s %s from %s: %s, %s ago%s", d.ID, d.Kind, d.Release, orDash(d.FromRelease),
					d.State, age(now, d.StartedAt), took)
				if d.Error != "" {
					line += ": " + firstLine(d.Error)
				}
				fmt.Fprintln(w, line)
			}
		}
	}
}

// renderReleases writes the app's releases: weight, req/s and error rate
// since the snapshot before (the last minute's for the first snapshot),
// p50/p99 over the last minute, requests in flight.
func renderReleases(w io.Writer, a watchApp) {
	st := a.Status
	rels := map[string]bool{}
	for r := range st.Weights {
		rels[r] = true
	}
	for r := range st.Recent {
		rels[r] = true
	}
	if len(rels) == 0 {
		return
	}
	names := make([]string, 0, len(rels))
	for r := range rels {
		names = append(names, r)
	}
	sort.Strings(names)
	total := 0
	for _, n := range st.Weights {
		total += n
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RELEASE\tWEIGHT\tREQ/S\tERRORS\tP50 (1m)\tP99 (1m)\tIN FLIGHT")
	for _, r := range names {
		share := "0%"
		if total > 0 {
			share = fmt.Sprintf("%d%%", st.Weights[r]*100/total)
		}
		win := st.Recent[r]
		reqs, errs := "-", "-" // unknown: the daemon restarted since the last snapshot
		switch rt := a.Rates[r]; {
		case a.Rates == nil: // the first snapshot: the last minute's figures
			reqs = fmt.Sprintf("%.1f", float64(win.Requests)/deploy.RecentWindow.Seconds())
			errs = fmt.Sprintf("%.2f%%", 100*win.ErrorRate)
		case !rt.Reset:
			reqs = fmt.Sprintf("%.1f", rt.ReqPerSec)
			errs = fmt.Sprintf("%.2f%%", 100*rt.ErrorRate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r, share, reqs, errs,
			latency(win.P50, win.Requests), latency(win.P99, win.Requests), st.Traffic[r].InFlight)
	}
	tw.Flush()
}

// latency formats a window's quantile; "-" without requests.
func latency(d time.Duration, n uint64) string {
	if n == 0 {
		return "-"
	}
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// age is how long before now t was, in its two largest units ("42s",
// "5m3s", "2h5m", "3d4h"); "-" for an unknown t.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// isTerminal reports whether w is a terminal: a file that answers the
// terminal's ioctl (a character device alone could be /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios)
	return err == nil
}
