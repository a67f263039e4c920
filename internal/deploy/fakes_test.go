package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/traffic"
)

// The seams let the engine's steps run over fakes, in milliseconds: no
// process, no proxy, no database.

// fakeInstance is an Instance of fakeFleet.
type fakeInstance struct{ id, release string }

func (f *fakeInstance) ID() string              { return f.id }
func (f *fakeInstance) Release() string         { return f.release }
func (f *fakeInstance) App() config.App         { return config.App{} }
func (f *fakeInstance) Ready() <-chan struct{}  { return nil }
func (f *fakeInstance) Crashed() <-chan string  { return nil }
func (f *fakeInstance) Restarts() (int, string) { return 0, "" }
func (f *fakeInstance) BootState() string       { return "" }
func (f *fakeInstance) LastCheckError() error   { return nil }
func (f *fakeInstance) LogTail(n int) []string  { return nil }

// fakeFleet records what the engine asks of it, in order, in log.
type fakeFleet struct {
	insts []Instance
	log   *[]string
}

func (f *fakeFleet) say(format string, args ...any) {
	*f.log = append(*f.log, fmt.Sprintf(format, args...))
}

func (f *fakeFleet) Start(app config.App, release string, n int) (Instance, error) {
	m := &fakeInstance{id: fmt.Sprintf("%s-%d", release, n), release: release}
	f.insts = append(f.insts, m)
	return m, nil
}
func (f *fakeFleet) Stop(ctx context.Context, ms []Instance) error {
	f.say("stop %s", strings.Join(ids(ms), ","))
	f.insts = slices.DeleteFunc(f.insts, func(m Instance) bool { return slices.Contains(ms, m) })
	return nil
}
func (f *fakeFleet) StopAll(ctx context.Context) error { return f.Stop(ctx, f.insts) }
func (f *fakeFleet) Of(release string) []Instance {
	return slices.DeleteFunc(slices.Clone(f.insts), func(m Instance) bool { return m.Release() != release })
}
func (f *fakeFleet) AllBut(keep string) []Instance {
	return slices.DeleteFunc(slices.Clone(f.insts), func(m Instance) bool { return m.Release() == keep })
}
func (f *fakeFleet) Drain(ctx context.Context, ms []Instance, timeout time.Duration) error {
	f.say("drain instances %s", strings.Join(ids(ms), ","))
	return f.Stop(ctx, ms)
}
func (f *fakeFleet) AnnounceDrain(ms []Instance, cutFrom time.Time) {
	f.say("announce %s", strings.Join(ids(ms), ","))
}
func (f *fakeFleet) ClearDrain(ids ...string) { f.say("clear %s", strings.Join(ids, ",")) }
func (f *fakeFleet) Find() []state.Instance   { return nil }
func (f *fakeFleet) Recover(ctx context.Context, active string, app config.App, found []state.Instance) {
}
func (f *fakeFleet) StartMissing(active string, app config.App)    {}
func (f *fakeFleet) Flush(ctx context.Context) error               { return nil }
func (f *fakeFleet) Status() []instance.Status                     { return nil }
func (f *fakeFleet) LogFiles(release, id string) ([]string, error) { return nil, nil }
func (f *fakeFleet) TrimLogs()                                     {}
func (f *fakeFleet) Close()                                        {}

// fakeTraffic records the drains it is asked for in the same log.
type fakeTraffic struct {
	Traffic // what these tests do not use: a call panics
	log     *[]string
}

func (t *fakeTraffic) Drain(ctx context.Context, release string, pace time.Duration) traffic.DrainResult {
	if ctx.Err() != nil {
		*t.log = append(*t.log, "cut traffic of "+release)
	} else {
		*t.log = append(*t.log, "drain traffic of "+release)
	}
	return traffic.DrainResult{Finished: 3, Cut: 1}
}

// Retiring the old releases tells their instances first, then drains
// each release's traffic, then stops the instances and clears the
// notices; the live release is not touched.
func TestRetireAllButOverFakes(t *testing.T) {
	var log []string
	ff := &fakeFleet{log: &log}
	for _, r := range []string{"r1", "r2", "r3"} {
		ff.Start(config.App{}, r, 1) //nolint:errcheck // the fake does not fail
	}
	cfg := &config.Config{}
	cfg.Proxy.DrainTimeout.Duration = time.Second
	e := &Engine{log: slog.New(slog.DiscardHandler), cfg: cfg, fleet: ff, px: &fakeTraffic{log: &log}}

	detail, err := (&Run{e: e, cfg: cfg}).retireAllBut(context.Background(), "r3")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(ff.insts); !slices.Equal(got, []string{"r3-1"}) {
		t.Errorf("instances left: got %q, want [r3-1]", got)
	}
	// Releases are drained in map order: compare each one's sequence.
	for _, r := range []string{"r1", "r2"} {
		a := slices.Index(log, "announce "+r+"-1")
		d := slices.Index(log, "drain traffic of "+r)
		s := slices.IndexFunc(log, func(l string) bool { return strings.HasPrefix(l, "stop ") && strings.Contains(l, r+"-1") })
		c := slices.IndexFunc(log, func(l string) bool { return strings.HasPrefix(l, "clear ") && strings.Contains(l, r+"-1") })
		if a < 0 || d < a || s < d || c < s {
			t.Errorf("%s: want announce, drain, stop, clear in this order; got %q", r, log)
		}
	}
	if !strings.Contains(detail, "2 instance(s) stopped") {
		t.Errorf("detail: got %q, want it to count 2 instances stopped", detail)
	}
}

// The stop of a held switch cuts at once what the old release still has
// open, without telling its instances again (the hold told them); a
// rolling batch is drained by the fleet, instance by instance, and the
// rest of its release is left alone.
func TestDrainHowOverFakes(t *testing.T) {
	var log []string
	ff := &fakeFleet{log: &log}
	for _, n := range []int{1, 2, 3} {
		ff.Start(config.App{}, "r1", n) //nolint:errcheck // the fake does not fail
	}
	e := &Engine{log: slog.New(slog.DiscardHandler), cfg: &config.Config{}, fleet: ff, px: &fakeTraffic{log: &log}}

	if _, err := e.drain(context.Background(), ff.Of("r1")[:1], drainHow{timeout: time.Second, batch: true}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"drain instances r1-1", "stop r1-1"}; !slices.Equal(log, want) {
		t.Errorf("a batch: got %q, want %q", log, want)
	}
	log = log[:0]
	rs, err := e.drain(context.Background(), ff.Of("r1"), drainHow{told: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cut traffic of r1", "stop r1-2,r1-3", "clear r1-2,r1-3"}; !slices.Equal(log, want) {
		t.Errorf("a held switch's stop: got %q, want %q", log, want)
	}
	if len(rs) != 1 || rs[0].release != "r1" || rs[0].Cut != 1 {
		t.Errorf("result: got %+v, want r1's drain", rs)
	}
}
