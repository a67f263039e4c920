package fleet

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/proxy"
)

// warmTarget shares the connections of the instances in rotation among
// the instances of the new one's release, from 1 to warmConns.
func TestWarmTarget(t *testing.T) {
	px := proxy.New(proxy.Options{})
	f := &Fleet{insts: map[string]*Instance{}}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	add := func(id, release string, healthy bool, idle int) *Instance {
		t.Helper()
		b := px.AddBackend(proxy.BackendSpec{ID: id, Release: release, Addr: addr})
		b.SetHealthy(healthy)
		b.Warm(idle)
		for deadline := time.Now().Add(10 * time.Second); b.IdleConns() < idle; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d idle connections, want %d", id, b.IdleConns(), idle)
			}
		}
		m := &Instance{id: id, release: release, backend: b}
		f.mu.Lock()
		f.insts[id] = m
		f.mu.Unlock()
		return m
	}
	remove := func(id string) {
		f.mu.Lock()
		delete(f.insts, id)
		f.mu.Unlock()
		px.RemoveBackend(id)
	}
	n1 := add("new-1", "r2", false, 0)
	if got := f.warmTarget(n1); got != 1 {
		t.Errorf("nothing in rotation: got %d, want 1", got)
	}
	add("old-1", "r1", true, 5)
	add("old-2", "r1", true, 2)
	add("old-3", "r1", false, 9) // out of rotation: not counted
	if got := f.warmTarget(n1); got != 7 {
		t.Errorf("one new instance, 7 connections in rotation: got %d, want 7", got)
	}
	add("new-2", "r2", false, 3) // booting too: its own share, not counted
	if got := f.warmTarget(n1); got != 4 {
		t.Errorf("two new instances, 7 connections in rotation: got %d, want 4", got)
	}
	remove("new-2")
	add("old-4", "r1", true, 12)
	if got := f.warmTarget(n1); got != warmConns {
		t.Errorf("19 connections in rotation: got %d, want the bound %d", got, warmConns)
	}
}
