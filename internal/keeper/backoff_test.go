package keeper

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	var b backoff
	young := time.Second
	for i, c := range []struct {
		ranFor time.Duration
		want   time.Duration
	}{
		{stableAfter, 0},         // a daemon that ran well: at once
		{young, minBackoff},      // dying young: wait
		{young, 2 * minBackoff},  // and longer
		{young, 4 * minBackoff},  //
		{young, 8 * minBackoff},  //
		{young, 16 * minBackoff}, //
		{young, maxBackoff},      // capped
		{young, maxBackoff},      //
		{stableAfter + young, 0}, // ran long enough again: at once
		{young, minBackoff},      // and the doubling starts over
		{stableAfter - 1, 2 * minBackoff},
	} {
		if got := b.delay(c.ranFor); got != c.want {
			t.Errorf("death %d after %s: got delay %s, want %s", i, c.ranFor, got, c.want)
		}
	}
}
