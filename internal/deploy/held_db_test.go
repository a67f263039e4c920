package deploy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dbSetup is a [database] whose migrate_command is the demo app's own
// migration tool (db/NNN_name.sql in the release), on a SQLite file.
func (h *harness) dbSetup(deploy ...string) setup {
	return setup{deploy: append(deploy, `[database]`,
		`url = "sqlite://`+h.root+`/app.db"`,
		`migrate_command = `+strconv.Quote(exe(h.t)+" migrate"),
		`preview_data = ["demo_schema_version"]`)}
}

const sqlItems = "CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT, note TEXT);\n"

// TestFailedHoldStopsTheOldRelease: a held deploy (--hold) whose release
// phase changed the database and whose new release then fails to boot
// refuses requests (FailHold), stops the old release, and the next deploy
// — not held by its own preview, the schema being changed already — goes
// through a held switch, so no request reaches the old release.
func TestFailedHoldStopsTheOldRelease(t *testing.T) {
	h := newHarness(t, setup{deploy: []string{`strategy = "canary"`, `steps = ["50%"]`, `step_time = "2s"`}})
	v1 := h.mustDeploy("v1", nil)
	h.eng.during = func(ctx context.Context) (string, error) { return "column renamed", nil }
	_, evs, err := h.deploy(Request{Source: h.source("v2", map[string]string{"demo.env": "DEMO_FAIL_BOOT=1\n"}), Hold: true})
	if !errors.Is(err, errHeldFailed) {
		t.Fatalf("held deploy: got %v, want errHeldFailed\n%s", err, describe(evs))
	}
	if left := h.pids(v1); len(left) != 0 {
		t.Errorf("instances of %s still run after the failed held switch: %v", v1, left)
	}
	if code, _ := h.get("", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("after FailHold: got %d, want 503", code)
	}
	h.eng.during = nil
	r, _ := h.startAndWait(Request{Source: h.source("v3", nil)}, isStep(StepHold, "start"))
	servedByOld := 0
	for range 10 {
		if code, body := h.get("", ""); code == http.StatusOK && body == "v1" {
			servedByOld++
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := h.finish(r); err != nil {
		t.Fatalf("deploy v3: %v", err)
	}
	if servedByOld > 0 {
		t.Errorf("the next deploy sent %d of 10 requests to %s", servedByOld, v1)
	}
	h.assertServes("v3")
}

// TestStopFirstAdditiveMigrationBootFails: a stop-first deploy whose
// release phase only added a column (the preview said so) and whose new
// release fails to boot starts the old release again and serves.
func TestStopFirstAdditiveMigrationBootFails(t *testing.T) {
	h := newHarness(t, setup{})
	h.writeConfig(h.dbSetup(`strategy = "stop-first"`))
	h.mustDeploy("v1", map[string]string{"db/001_items.sql": sqlItems})
	_, evs, err := h.deploy(Request{Source: h.source("v2", map[string]string{
		"db/001_items.sql": sqlItems,
		"db/002_extra.sql": "ALTER TABLE items ADD COLUMN extra TEXT;\n",
		"demo.env":         "DEMO_FAIL_BOOT=1\n",
	})})
	if err == nil || errors.Is(err, errHeldFailed) || strings.Contains(err.Error(), "live release was not touched") {
		t.Fatalf("deploy v2: got %v, want a failed boot that restores v1 (and does not claim v1 was untouched)\n%s", err, describe(evs))
	}
	if code, body := h.get("", ""); code != http.StatusOK || body != "v1" {
		t.Errorf("after the failed boot: got %d %q, want 200 from v1 (restored)", code, body)
	}
}

// TestPauseDuringSchemaPreview: a pause taken during the schema preview
// holds the deploy before migrate_command touches the live database.
func TestPauseDuringSchemaPreview(t *testing.T) {
	h := newHarness(t, setup{})
	h.writeConfig(h.dbSetup())
	h.mustDeploy("v1", map[string]string{"db/001_items.sql": sqlItems})
	r, i := h.startAndWait(Request{Source: h.source("v2", map[string]string{
		"db/001_items.sql": sqlItems,
		"db/002_extra.sql": "ALTER TABLE items ADD COLUMN extra TEXT;\n",
		"demo.env":         "DEMO_MIGRATE_DELAY=300ms\n"})}, isStep(StepSchema, "start"))
	if _, err := h.eng.Control(ActionPause); err != nil {
		t.Fatalf("pause during the schema preview: %v", err)
	}
	var migrated bool
	waitEvent(t, r, &i, func(ev Event) bool {
		if ev.Type == "step" && ev.Step == StepMigrate && ev.Status == "start" {
			migrated = true
		}
		return ev.Type == "info" && strings.HasPrefix(ev.Message, "paused")
	})
	if migrated {
		t.Errorf("the pause asked during the schema preview took effect only after migrate_command started on the live database")
	}
	if _, err := h.eng.Control(ActionAbort); err != nil {
		t.Fatalf("abort: %v", err)
	}
	h.finish(r)
}

// TestHoldShipsBreakingExpandFile: an expand migration file that the lint
// refuses (a dropped column) ships with --hold: the deploy goes held.
func TestHoldShipsBreakingExpandFile(t *testing.T) {
	h := newHarness(t, setup{})
	h.writeConfig(setup{deploy: []string{`[database]`, `url = "sqlite://` + h.root + `/app.db"`}})
	h.mustDeploy("v1", map[string]string{"migrations/001_items.up.sql": sqlItems})
	files := map[string]string{
		"migrations/001_items.up.sql": sqlItems,
		"migrations/002_drop.up.sql":  "ALTER TABLE items DROP COLUMN note;\n"}
	if _, _, err := h.deploy(Request{Source: h.source("v2", files)}); err == nil || !strings.Contains(err.Error(), "--hold") {
		t.Fatalf("deploy of a breaking expand file: got %v, want refused, naming --hold", err)
	}
	_, evs, err := h.deploy(Request{Hold: true, Source: h.source("v3", files)})
	if err != nil {
		t.Fatalf("deploy --hold of a breaking expand file: %v\nsteps %q", err, stepsOf(evs))
	}
	if got := stepsOf(evs); !strings.Contains(strings.Join(got, " "), "hold:ok") {
		t.Errorf("steps %q, want a held switch", got)
	}
	h.assertServes("v3")
}

// TestHeldReleasePhaseRecorded: while a held switch's release phase runs,
// state records it (a daemon killed then comes back refusing requests);
// once the switch is done the record is gone.
func TestHeldReleasePhaseRecorded(t *testing.T) {
	h := newHarness(t, setup{})
	h.mustDeploy("v1", nil)
	ctx := context.Background()
	proceed := make(chan struct{})
	h.eng.during = func(context.Context) (string, error) { <-proceed; return "column renamed", nil }
	r, _ := h.startAndWait(Request{Source: h.source("v2", nil), Hold: true}, isStep(StepReleasePhase, "start"))
	if v, err := h.store.Get(ctx, phaseKey); err != nil || !strings.Contains(v, "release phase began") {
		t.Errorf("while the release phase runs, %s = %q, %v; want it recorded", phaseKey, v, err)
	}
	close(proceed)
	if _, err := h.finish(r); err != nil {
		t.Fatalf("deploy v2: %v", err)
	}
	if v, _ := h.store.Get(ctx, phaseKey); v != "" {
		t.Errorf("after the switch, %s = %q; want it forgotten", phaseKey, v)
	}
	h.assertServes("v2")
}

// TestRecoverAfterDeathInHeldReleasePhase: a daemon that comes back to a
// recorded release phase (it died in one) refuses requests with why,
// instead of serving the old release on a changed database; the next
// deploy, held, ends it.
func TestRecoverAfterDeathInHeldReleasePhase(t *testing.T) {
	h := newHarness(t, setup{})
	ctx := context.Background()
	h.mustDeploy("v1", nil)
	if err := h.store.Set(ctx, phaseKey, "a held deploy of v2 stopped after its release phase began"); err != nil {
		t.Fatal(err)
	}
	closeLikeADeadDaemon(h.eng)
	h.eng = h.newEngine()
	if err := h.eng.Recover(ctx); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if code, body := h.get("", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "release phase began") {
		t.Fatalf("after recovering into a recorded release phase: got %d %q, want 503 saying why", code, body)
	}
	_, evs, err := h.deploy(Request{Source: h.source("v2", nil)})
	if err != nil {
		t.Fatalf("deploy v2: %v\n%s", err, describe(evs))
	}
	if got := strings.Join(stepsOf(evs), " "); !strings.Contains(got, "hold:ok") {
		t.Errorf("steps %q, want a held switch", got)
	}
	h.assertServes("v2")
}
