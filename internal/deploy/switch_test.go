package deploy

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// TestSwitchNotRecordedDoesNotHappen: when state.db cannot record the
// switch (here another writer holds its lock past busy_timeout; a full
// disk does the same), traffic does not move: the old release serves on,
// as state.db says, and the new release's instances are stopped. Before,
// the proxy switched first, so it served the new release while state.db —
// and the next daemon — said the old one was live.
func TestSwitchNotRecordedDoesNotHappen(t *testing.T) {
	h := newHarness(t, setup{instances: 1, deploy: []string{`before_switch = "sleep 0.2"`}})
	v1 := h.mustDeploy("v1", nil)

	db, err := sql.Open("sqlite", "file:"+h.cfg.StatePath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := h.eng.Start(Request{Source: h.source("v2", nil)})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	waitEvent(t, r, &i, isStep(StepHook, "start"))
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("take state.db's write lock: %v", err)
	}
	waitEvent(t, r, &i, isStep(StepSwitch, "failed"))
	conn.ExecContext(context.Background(), "ROLLBACK") //nolint:errcheck // the lock goes with the connection
	conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	live, err := r.Wait(ctx)
	if !errors.Is(err, errNotSwitched) || live != v1 {
		t.Errorf("deploy: live %q, %v; want %s live and an error saying nothing switched", live, err, v1)
	}
	h.assertServes("v1")
	if got := h.active(); got != v1 {
		t.Errorf("state.db says %s is live, want %s", got, v1)
	}
	v2 := h.releaseLabelled("v2")
	deadline := time.Now().Add(waitTimeout)
	for len(h.eng.instancesOf(v2, false)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(h.eng.instancesOf(v2, false)); n != 0 {
		t.Errorf("%d instance(s) of the release that did not switch still run", n)
	}
}
