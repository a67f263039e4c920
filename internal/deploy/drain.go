package deploy

import (
	"context"
	"slices"
	"time"

	"github.com/cutover/cutover/internal/traffic"
)

// drainHow says how drain goes about it.
type drainHow struct {
	// timeout is how long what the instances have in flight may take to
	// finish; 0 cuts it at once.
	timeout time.Duration
	// pace spreads the cut of what is still open at timeout (websockets,
	// streams) over this long; 0 cuts it all at once.
	pace time.Duration
	// told: the instances were told of their drain already (a held
	// switch tells them when it holds the requests).
	told bool
	// batch drains just these instances, which share their release with
	// others that keep serving (a rolling deploy's batch): they leave
	// rotation and their own requests are waited for, up to timeout.
	batch bool
}

// releaseDrain is what the drain of one release's instances did.
type releaseDrain struct {
	release string
	traffic.DrainResult
}

// drain is the one way a deploy drains instances and stops them: it
// tells them (their drain notice, see fleet), waits for what they have
// in flight as how says, stops them, then removes their notices. A whole
// release is drained by the proxy (traffic.Drain), which closes what is
// still open at the timeout, websockets with a close frame, paced; a
// batch of a release that keeps serving by the fleet (Fleet.Drain).
// Releases are drained one after the other, then every instance stops
// at once; the result is per release, sorted.
func (e *Engine) drain(ctx context.Context, ms []managed, how drainHow) ([]releaseDrain, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	if how.batch {
		return nil, e.drainInstances(ctx, ms, how.timeout)
	}
	var releases []string
	for _, m := range ms {
		if !slices.Contains(releases, m.Release()) {
			releases = append(releases, m.Release())
		}
	}
	slices.Sort(releases)
	var res []releaseDrain
	for _, rel := range releases {
		var dctx context.Context
		var cancel context.CancelFunc
		if how.timeout > 0 {
			dctx, cancel = context.WithTimeout(ctx, how.timeout)
		} else {
			dctx, cancel = context.WithCancel(ctx)
			cancel()
		}
		if !how.told {
			e.announceDrain(ofRelease(ms, rel), time.Now().Add(how.timeout))
		}
		r := e.px.Drain(dctx, rel, how.pace)
		cancel()
		res = append(res, releaseDrain{rel, r})
	}
	defer e.clearDrain(ids(ms)...)
	return res, e.stopInstances(ctx, ms)
}
