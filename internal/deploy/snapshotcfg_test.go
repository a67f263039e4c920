package deploy

import (
	"errors"
	"os"
	"testing"
)

// A deploy reads cutover.toml once, as it starts, and runs with that
// snapshot to its end, whatever the daemon started with. These settings
// were read from the daemon's start-time configuration.

// deploy.strategy changed to "stop-first" since the daemon started: a
// --preview deploy is refused at once, as it is when the daemon starts
// with it (it was let through, and its preview skipped without a word).
func TestPreviewRefusedByTheStrategyOfTheFile(t *testing.T) {
	h := newHarness(t, setup{})
	h.mustDeploy("v1", nil)
	h.writeConfig(setup{deploy: []string{`strategy = "stop-first"`}})
	run, err := h.eng.Start(Request{Source: h.source("v2", nil), Preview: true})
	var refused *RefusedError
	if !errors.As(err, &refused) {
		for i := 0; run != nil; { // let it end before the harness stops
			evs, done, err := run.Next(t.Context(), i)
			if done || err != nil {
				break
			}
			i += len(evs)
		}
		t.Fatalf("a --preview deploy with strategy stop-first in the file: got %v, want a refusal", err)
	}
}

// release.keep lowered since the daemon started: the deploy's finish
// prunes to the new keep.
func TestFinishPrunesToTheKeepOfTheFile(t *testing.T) {
	h := newHarness(t, setup{release: []string{`keep = 5`}})
	v1 := h.mustDeploy("v1", nil)
	v2 := h.mustDeploy("v2", nil)
	h.mustDeploy("v3", nil)
	h.writeConfig(setup{release: []string{`keep = 2`}})
	h.mustDeploy("v4", nil)
	for _, id := range []string{v1, v2} {
		if _, err := os.Stat(h.eng.Releases().Dir(id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after a deploy with release.keep = 2 in the file: %v, want it pruned", id, err)
		}
	}
}
