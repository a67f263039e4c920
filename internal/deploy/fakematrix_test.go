package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/traffic"
)

// The deploy state machine over fakes: each strategy × each failure edge,
// from a live v1 (two instances) to v2, in fake time. Each case asserts
// the end state: the deploy's outcome, the release live in the proxy and
// in the journal, the instances left running, the hold, and the steps
// recorded in order.

// fakeStrategy is one way to ship v2.
type fakeStrategy struct {
	name   string
	deploy []string // lines of [deploy]
	hold   bool     // Request.Hold
	held   bool     // the deploy is a held switch
}

var fakeStrategies = []fakeStrategy{
	{name: "bluegreen", deploy: []string{`strategy = "bluegreen"`}},
	{name: "rolling", deploy: []string{`strategy = "rolling"`, `batch = 1`}},
	{name: "canary", deploy: []string{`strategy = "canary"`, `steps = ["25%", "50%"]`, `step_time = "10s"`}},
	{name: "stopfirst", deploy: []string{`strategy = "stop-first"`}, held: true},
	{name: "hold", deploy: []string{`strategy = "bluegreen"`}, hold: true, held: true},
}

// fakeEdge is what happens to the deploy of v2.
type fakeEdge struct {
	name    string
	deploy  []string // more lines of [deploy] for v2
	preview bool     // Request.Preview
	script  map[string]bootScript
	// at is the step whose start triggers act (its nth start, 1 if 0); 0:
	// act right after Start.
	at  Step
	nth int
	act func(fe *fakeEngine, r *Run, next *int) error
	// setup, when set, runs before the deploy of v2 starts.
	setup func(fe *fakeEngine)
}

// releasePhase makes a held switch run fn as its release phase.
func releasePhase(fn func(ctx context.Context) (string, error)) func(fe *fakeEngine) {
	return func(fe *fakeEngine) { fe.e.during = fn }
}

// badNumbers makes v2 answer half its requests with errors, v1 none.
func badNumbers(fe *fakeEngine) {
	fe.traffic.window = func(release string, d time.Duration) traffic.WindowStats {
		if strings.HasSuffix(release, "-v2") {
			return traffic.WindowStats{Requests: 1000, Errors: 500, ErrorRate: 0.5}
		}
		return traffic.WindowStats{Requests: 1000}
	}
}

// acts passes actions to the run, in order.
func acts(as ...Action) func(fe *fakeEngine, r *Run, next *int) error {
	return func(fe *fakeEngine, r *Run, next *int) error {
		for _, a := range as {
			if _, err := fe.e.Control(a); err != nil {
				return err
			}
		}
		return nil
	}
}

// pauseResume pauses the run, waits until it holds (before a step, or
// with its clock stopped), then resumes it.
func pauseResume(fe *fakeEngine, r *Run, next *int) error {
	if _, err := fe.e.Control(ActionPause); err != nil {
		return err
	}
	if !waitFakeEvent(r, next, func(ev Event) bool {
		return ev.Type == "info" && strings.HasPrefix(ev.Message, "paused ")
	}) {
		return errors.New("the run ended without pausing")
	}
	_, err := fe.e.Control(ActionResume)
	return err
}

// pauseAbort pauses the run, waits until it holds, then aborts it.
func pauseAbort(fe *fakeEngine, r *Run, next *int) error {
	if _, err := fe.e.Control(ActionPause); err != nil {
		return err
	}
	if !waitFakeEvent(r, next, func(ev Event) bool {
		return ev.Type == "info" && strings.HasPrefix(ev.Message, "paused ")
	}) {
		return errors.New("the run ended without pausing")
	}
	_, err := fe.e.Control(ActionAbort)
	return err
}

// daemonStops closes the engine, as the daemon does when it stops.
func daemonStops(fe *fakeEngine, r *Run, next *int) error {
	fe.e.Close()
	return nil
}

// waitFakeEvent reads the run's events from *next until match; false if
// the run ended first.
func waitFakeEvent(r *Run, next *int, match func(Event) bool) bool {
	for {
		evs, _, err := r.Next(context.Background(), *next)
		if err != nil {
			panic(err)
		}
		for _, ev := range evs {
			*next++
			if match(ev) {
				return true
			}
			if ev.Type == "result" {
				return false
			}
		}
	}
}

var slowV2 = map[string]bootScript{"v2": {after: time.Second}}

var fakeEdges = []fakeEdge{
	{name: "ok"},
	{name: "boot_crash", script: map[string]bootScript{"v2": {after: time.Second, crash: true}}},
	{name: "boot_timeout", script: map[string]bootScript{"v2": {never: true}}},
	{name: "hook_fails", deploy: []string{`before_switch = "exit 3"`}},
	{name: "abort_boot", script: slowV2, at: StepBoot, act: acts(ActionAbort)},
	{name: "abort_heldboot", script: slowV2, at: StepHeldBoot, act: acts(ActionAbort)},
	{name: "abort_hold", at: StepHold, act: acts(ActionAbort)},
	{name: "abort_stop", at: StepStop, act: acts(ActionAbort)},
	{name: "abort_hook", deploy: []string{`before_switch = "sleep 5"`}, at: StepHook, act: acts(ActionAbort)},
	{name: "abort_preview", preview: true, at: StepPreview, act: acts(ActionAbort)},
	{name: "abort_shift1", at: StepShift, act: acts(ActionAbort)},
	{name: "abort_shift2", at: StepShift, nth: 2, act: acts(ActionAbort)},
	{name: "abort_watch", deploy: []string{`watch = "30s"`}, at: StepWatch, act: acts(ActionAbort)},
	{name: "abort_paused", script: slowV2, at: StepBoot, act: pauseAbort},
	{name: "pause_resume_boot", script: slowV2, at: StepBoot, act: pauseResume},
	{name: "pause_resume_shift", at: StepShift, act: pauseResume},
	{name: "pause_resume_preview", preview: true, at: StepPreview, act: func(fe *fakeEngine, r *Run, next *int) error {
		if err := pauseResume(fe, r, next); err != nil {
			return err
		}
		_, err := fe.e.Control(ActionPromote)
		return err
	}},
	{name: "preview_expires", preview: true},
	{name: "refused_promote_boot", script: slowV2, at: StepBoot, act: acts(ActionPromote)},
	{name: "refused_pause_hold", at: StepHold, act: acts(ActionPause)},
	{name: "promote_preview", preview: true, at: StepPreview, act: acts(ActionPromote)},
	{name: "promote_shift", at: StepShift, act: acts(ActionPromote)},
	{name: "promote_watch", deploy: []string{`watch = "30s"`}, at: StepWatch, act: acts(ActionPromote)},
	{name: "bad_numbers", deploy: []string{`watch = "30s"`}, setup: badNumbers},
	{name: "phase_fails", setup: releasePhase(func(ctx context.Context) (string, error) {
		return "", errors.New("migration 3 failed")
	})},
	{name: "phase_breaks", setup: releasePhase(func(ctx context.Context) (string, error) {
		return "", fmt.Errorf("migration 3 failed half-way: %w", errSchemaChanged)
	})},
	{name: "phase_then_boot_crash", script: map[string]bootScript{"v2": {after: time.Second, crash: true}},
		setup: releasePhase(func(ctx context.Context) (string, error) { return "schema changed", nil })},
	{name: "stops_boot", script: slowV2, at: StepBoot, act: daemonStops},
	{name: "stops_heldboot", script: slowV2, at: StepHeldBoot, act: daemonStops},
	{name: "stops_preview", preview: true, at: StepPreview, act: daemonStops},
	{name: "stops_shift", at: StepShift, act: daemonStops},
	{name: "stops_watch", deploy: []string{`watch = "30s"`}, at: StepWatch, act: daemonStops},
}

// fakeEnd is the end state of a case.
type fakeEnd struct {
	outcome state.DeployState
	live    string // label of the release live in the proxy and the journal
	running string // labels of the instances left running: "v1-1 v1-2"
	holding bool
	steps   string // the steps recorded: "lock prepare boot! …", ! = failed
	refused bool   // act was refused (ControlRefusedError)
}

func TestDeployMatrixOverFakes(t *testing.T) {
	dump := os.Getenv("CUTOVER_FAKE_DUMP") != ""
	for _, s := range fakeStrategies {
		for _, edge := range fakeEdges {
			name := s.name + "/" + edge.name
			want, ok := fakeWant[name]
			if !ok && !dump {
				continue // not a step of this strategy
			}
			t.Run(name, func(t *testing.T) {
				got := runFakeCase(t, s, edge)
				if dump {
					fmt.Printf("%q: {%s},\n", name, got.literal())
					return
				}
				if got != want {
					t.Errorf("end state:\n got %s\nwant %s", got.literal(), want.literal())
				}
			})
		}
	}
	if !dump {
		for name := range fakeWant {
			s, e, _ := strings.Cut(name, "/")
			if !slices.ContainsFunc(fakeStrategies, func(x fakeStrategy) bool { return x.name == s }) ||
				!slices.ContainsFunc(fakeEdges, func(x fakeEdge) bool { return x.name == e }) {
				t.Errorf("fakeWant names case %s, which the matrix does not have", name)
			}
		}
	}
}

func (w fakeEnd) literal() string {
	return fmt.Sprintf("%q, %q, %q, %v, %q, %v", w.outcome, w.live, w.running, w.holding, w.steps, w.refused)
}

// runFakeCase deploys v1, then v2 as s ships it with edge, and returns
// the end state.
func runFakeCase(t *testing.T, s fakeStrategy, edge fakeEdge) fakeEnd {
	var got fakeEnd
	synctest.Test(t, func(t *testing.T) {
		fe := newFakeEngine(t, s.deploy, edge.script)
		r1, err := fe.e.Start(Request{Source: fe.source("v1")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r1.Wait(context.Background()); err != nil {
			t.Fatalf("deploy v1: %v", err)
		}
		fe.writeConfig(append(slices.Clone(s.deploy), edge.deploy...))
		if edge.setup != nil {
			edge.setup(fe)
		}
		r, err := fe.e.Start(Request{Source: fe.source("v2"), Preview: edge.preview, Hold: s.hold})
		if err != nil {
			t.Fatalf("start v2: %v", err)
		}
		next := 0
		if edge.act != nil {
			reached := true
			if edge.at != 0 {
				n := max(edge.nth, 1)
				for range n {
					if reached = waitFakeEvent(r, &next, isStep(edge.at, "start")); !reached {
						break
					}
				}
			}
			if !reached {
				t.Fatalf("the deploy ended before step %s", edge.at)
			}
			err := edge.act(fe, r, &next)
			var refused *ControlRefusedError
			switch {
			case errors.As(err, &refused):
				t.Logf("refused: %v", err)
				got.refused = true
			case err != nil:
				t.Fatalf("act: %v", err)
			}
		}
		if _, err := r.Wait(context.Background()); err != nil {
			t.Logf("deploy v2: %v", err)
		}
		fe.e.Close()
		got.outcome = fe.journal.lastDeploy().State
		live := fe.traffic.Active()
		if jl, _ := fe.journal.Active(context.Background()); jl != live {
			t.Errorf("the proxy routes to %s, the journal names %s live", live, jl)
		}
		// A daemon that stops leaves the rest to the next one's Recover.
		stops := strings.HasPrefix(edge.name, "stops_")
		if w := fe.traffic.Weights(); len(w) > 0 && !stops {
			t.Errorf("weights left set: %v", w)
		}
		got.live = label(live)
		var running []string
		for _, id := range fe.fleet.running() {
			running = append(running, label(id))
		}
		got.running = strings.Join(running, " ")
		got.holding = fe.traffic.Holding()
		// A refusal must outlive the daemon: it is recorded.
		if why, _ := fe.journal.Get(context.Background(), failedHoldKey); got.holding != (why != "") {
			t.Errorf("the proxy holds: %v; the refusal recorded: %q", got.holding, why)
		}
		var steps []string
		for _, st := range fe.journal.lastDeploy().Steps {
			n := st.Name
			if st.Status != "ok" {
				n += "!"
			}
			steps = append(steps, n)
		}
		got.steps = strings.Join(steps, " ")
		// A release that did not go live is recorded failed.
		for _, rel := range []string{"v1", "v2"} {
			id := fe.releaseID(rel)
			st := fe.journal.status(id)
			switch {
			case label(live) == rel && st != state.ReleaseLive:
				t.Errorf("%s is live but recorded %s", rel, st)
			case label(live) != rel && rel == "v2" && !stops && st != state.ReleaseFailed && st != state.ReleaseRetired:
				t.Errorf("%s did not stay live but is recorded %s", rel, st)
			}
		}
	})
	return got
}

// label returns what follows the last "-" of a release id, and the
// instance number: "20260102-v2-1" → "v2-1".
func label(id string) string {
	parts := strings.Split(id, "-")
	if n := len(parts); n >= 2 {
		if _, err := fmt.Sscanf(parts[n-1], "%d", new(int)); err == nil && len(parts) >= 3 {
			return parts[n-2] + "-" + parts[n-1]
		}
		return parts[n-1]
	}
	return id
}

// releaseID returns the id of the release labelled label.
func (fe *fakeEngine) releaseID(label string) string {
	rels, _ := fe.journal.Releases(context.Background())
	for _, r := range rels {
		if strings.HasSuffix(r.ID, "-"+label) {
			return r.ID
		}
	}
	return ""
}

// fakeWant is the end state of each case, by "strategy/edge". An edge
// absent for a strategy is one its deploy has no step for.
var fakeWant = map[string]fakeEnd{
	"bluegreen/ok":                    {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot switch drain finish", false},
	"bluegreen/boot_crash":            {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"bluegreen/boot_timeout":          {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"bluegreen/hook_fails":            {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot hook! drain", false},
	"bluegreen/abort_boot":            {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"bluegreen/abort_hook":            {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot hook! drain", false},
	"bluegreen/abort_preview":         {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot preview! drain", false},
	"bluegreen/abort_watch":           {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot switch watch! drain", false},
	"bluegreen/abort_paused":          {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot drain", false},
	"bluegreen/pause_resume_boot":     {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot switch drain finish", false},
	"bluegreen/pause_resume_preview":  {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot preview switch drain finish", false},
	"bluegreen/preview_expires":       {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot preview! drain", false},
	"bluegreen/refused_promote_boot":  {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot switch drain finish", true},
	"bluegreen/promote_preview":       {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot preview switch drain finish", false},
	"bluegreen/promote_watch":         {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot switch watch drain finish", false},
	"bluegreen/stops_boot":            {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"bluegreen/stops_preview":         {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot preview! drain", false},
	"bluegreen/stops_watch":           {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot switch watch! drain", false},
	"rolling/ok":                      {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift boot shift switch drain finish", false},
	"rolling/boot_crash":              {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"rolling/boot_timeout":            {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"rolling/hook_fails":              {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hook! drain", false},
	"rolling/abort_boot":              {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot! drain", false},
	"rolling/abort_hook":              {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check hook! drain", false},
	"rolling/abort_preview":           {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot preview! drain", false},
	"rolling/abort_shift1":            {"rolled back", "v1", "v1-2 v1-3", false, "lock prepare check boot shift drain", false},
	"rolling/abort_paused":            {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot drain", false},
	"rolling/abort_shift2":            {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot shift boot shift drain", false},
	"rolling/abort_watch":             {"failed", "v2", "v2-1 v2-2", false, "lock prepare check boot shift boot shift switch watch!", false},
	"rolling/pause_resume_boot":       {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift boot shift switch drain finish", false},
	"rolling/pause_resume_shift":      {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift boot shift switch drain finish", false},
	"rolling/pause_resume_preview":    {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot preview shift shift switch drain finish", false},
	"rolling/preview_expires":         {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot preview! drain", false},
	"rolling/refused_promote_boot":    {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift boot shift switch drain finish", true},
	"rolling/promote_preview":         {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot preview shift shift switch drain finish", false},
	"rolling/promote_shift":           {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift boot shift switch drain finish", false},
	"rolling/promote_watch":           {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift boot shift switch watch drain finish", false},
	"rolling/stops_boot":              {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"rolling/stops_preview":           {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot preview! drain", false},
	"rolling/stops_shift":             {"failed", "v1", "v1-2 v2-1", false, "lock prepare check boot shift boot!", false},
	"rolling/stops_watch":             {"failed", "v2", "v2-1 v2-2", false, "lock prepare check boot shift boot shift switch watch!", false},
	"canary/ok":                       {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift shift switch drain finish", false},
	"canary/boot_crash":               {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"canary/boot_timeout":             {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"canary/hook_fails":               {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot hook! drain", false},
	"canary/abort_boot":               {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"canary/abort_hook":               {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot hook! drain", false},
	"canary/abort_preview":            {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot preview! drain", false},
	"canary/abort_shift1":             {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot shift! drain", false},
	"canary/abort_paused":             {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot drain", false},
	"canary/abort_shift2":             {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot shift shift! drain", false},
	"canary/abort_watch":              {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot shift shift switch watch! drain", false},
	"canary/pause_resume_boot":        {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift shift switch drain finish", false},
	"canary/pause_resume_shift":       {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift shift switch drain finish", false},
	"canary/pause_resume_preview":     {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot preview shift shift switch drain finish", false},
	"canary/preview_expires":          {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot preview! drain", false},
	"canary/refused_promote_boot":     {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift shift switch drain finish", true},
	"canary/promote_preview":          {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot preview shift shift switch drain finish", false},
	"canary/promote_shift":            {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift switch drain finish", false},
	"canary/promote_watch":            {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check boot shift shift switch watch drain finish", false},
	"canary/stops_boot":               {"failed", "v1", "v1-1 v1-2", false, "lock prepare check boot!", false},
	"canary/stops_preview":            {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check boot preview! drain", false},
	"canary/stops_shift":              {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot shift! drain", false},
	"canary/stops_watch":              {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot shift shift switch watch! drain", false},
	"stopfirst/ok":                    {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check hold stop held_boot switch drain finish", false},
	"stopfirst/boot_crash":            {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold stop held_boot! restore", false},
	"stopfirst/boot_timeout":          {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold stop held_boot! restore", false},
	"stopfirst/hook_fails":            {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold stop held_boot! restore", false},
	"stopfirst/abort_heldboot":        {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check hold stop held_boot! restore drain", false},
	"stopfirst/abort_hold":            {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check hold! drain", false},
	"stopfirst/abort_stop":            {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check hold stop restore drain", false},
	"stopfirst/refused_pause_hold":    {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check hold stop held_boot switch drain finish", true},
	"stopfirst/stops_heldboot":        {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold stop held_boot! restore", false},
	"hold/ok":                         {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check hold held_boot switch drain finish", false},
	"hold/boot_crash":                 {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold held_boot!", false},
	"hold/boot_timeout":               {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold held_boot!", false},
	"hold/hook_fails":                 {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold held_boot!", false},
	"hold/abort_heldboot":             {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check hold held_boot! drain", false},
	"hold/abort_hold":                 {"aborted", "v1", "v1-1 v1-2", false, "lock prepare check hold! drain", false},
	"hold/refused_pause_hold":         {"succeeded", "v2", "v2-1 v2-2", false, "lock prepare check hold held_boot switch drain finish", true},
	"hold/stops_heldboot":             {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold held_boot!", false},
	"bluegreen/bad_numbers":           {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot switch watch! drain", false},
	"rolling/bad_numbers":             {"failed", "v2", "v2-1 v2-2", false, "lock prepare check boot shift boot shift switch watch!", false},
	"canary/bad_numbers":              {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check boot shift! drain", false},
	"stopfirst/phase_fails":           {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold stop release_phase! restore", false},
	"stopfirst/phase_breaks":          {"failed", "v1", "", true, "lock prepare check hold stop release_phase!", false},
	"stopfirst/phase_then_boot_crash": {"failed", "v1", "", true, "lock prepare check hold stop release_phase held_boot!", false},
	"hold/bad_numbers":                {"rolled back", "v1", "v1-1 v1-2", false, "lock prepare check hold held_boot switch watch! drain", false}, // held without a database change: watched as any deploy
	"hold/phase_fails":                {"failed", "v1", "v1-1 v1-2", false, "lock prepare check hold release_phase!", false},
	"hold/phase_breaks":               {"failed", "v1", "", true, "lock prepare check hold release_phase!", false},
	"hold/phase_then_boot_crash":      {"failed", "v1", "", true, "lock prepare check hold release_phase held_boot!", false},
}
