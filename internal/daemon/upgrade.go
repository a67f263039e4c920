package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/keeper"
)

// lockPoll is how often a daemon waiting for daemon.lock (a new daemon
// during an upgrade) tries it again.
const lockPoll = 5 * time.Millisecond

// apiGate sits in front of the admin API. While the daemon hands over to
// a new one (between "release" and its exit, or "resume") it refuses every
// changing request, so that it never starts a deploy, a stop or a control
// action it no longer has the right to run; reads go on. It counts the
// changing requests in flight, so a release can tell whether one runs.
type apiGate struct {
	h        atomic.Pointer[http.Handler]
	closed   atomic.Bool
	changing atomic.Int64 // changing requests in flight
}

func (g *apiGate) set(h http.Handler) { g.h.Store(&h) }

func (g *apiGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		(*g.h.Load()).ServeHTTP(w, r)
		return
	}
	g.changing.Add(1)
	defer g.changing.Add(-1)
	if g.closed.Load() {
		api.WriteError(w, api.KindBusy, errors.New("this daemon is handing over to a new one (cutover upgrade); try again in a moment"))
		return
	}
	(*g.h.Load()).ServeHTTP(w, r)
}

// refuseRelease says why the daemon cannot hand over now ("" if it can):
// a deploy runs (or waits for promote/abort), or a changing request is in
// flight. The gate must be closed first, so none starts after the check.
func refuseRelease(units []*unit, g *apiGate) string {
	for _, u := range units {
		if p := u.eng.Progress(); p != nil {
			return fmt.Sprintf("a %s of %s is in progress (deploy #%d of %s, step %s); upgrade once it finished, or abort it", p.Kind, u.name, p.DeployID, p.Release, p.Step)
		}
	}
	// This request's own count is not in it: the gate counts API requests.
	if n := g.changing.Load(); n > 0 {
		return fmt.Sprintf("%d changing admin request(s) in flight (a deploy, stop or control action); try again in a moment", n)
	}
	return ""
}

// waitLock takes daemon.lock, waiting while another daemon holds it (the
// old daemon of an upgrade, until it releases) or until ctx ends or the
// keeper is gone (msgs closed; nil without a keeper).
func waitLock(ctx context.Context, dir string, msgs <-chan keeper.Msg) (func(), error) {
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		unlock, err := lockDataDir(dir)
		if err == nil {
			return unlock, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", filepath.Join(dir, "daemon.lock"), ctx.Err())
		case _, ok := <-msgs:
			if !ok {
				return nil, errors.New("the keeper is gone")
			}
			// Nothing is asked of a daemon before it is ready.
		case <-t.C:
		}
	}
}

// sameFile reports whether path is still the file fi described: the admin
// socket is removed at exit only if no newer daemon replaced it.
func sameFile(path string, fi os.FileInfo) bool {
	now, err := os.Lstat(path)
	if err != nil || fi == nil {
		return false
	}
	a, ok1 := now.Sys().(*syscall.Stat_t)
	b, ok2 := fi.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && a.Ino == b.Ino && a.Dev == b.Dev
}
