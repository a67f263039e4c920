package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAppsStopIsPostAndDaemonWide: with several apps, a stop naming one
// app (cutover --app shop stop: refused, stop is the daemon's), or a GET
// of /v1/stop (a read, which the daemon's gate lets through even while it
// hands over), must not stop every app and the daemon.
func TestAppsStopIsPostAndDaemonWide(t *testing.T) {
	a, b := startDaemon(t, nil, nil), startDaemon(t, nil, nil)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/stop"},
		{http.MethodPost, "/v1/stop?app=shop"},
	} {
		stopped := false
		apps := NewApps(map[string]*Server{"shop": NewServer(a.eng, slog.New(slog.DiscardHandler), nil), "blog": NewServer(b.eng, slog.New(slog.DiscardHandler), nil)},
			func() { stopped = true })
		rec := httptest.NewRecorder()
		apps.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if stopped || rec.Code < 400 {
			t.Errorf("%s %s: %d %s, stopped %v; want refused", c.method, c.path, rec.Code, rec.Body, stopped)
		}
	}
}
