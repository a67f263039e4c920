package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Apps serves the admin API of a daemon that runs several apps: a request
// goes to the Server of the app its "app" query parameter names, which
// may be left out when the daemon runs one app. GET /v1/apps lists the
// apps; POST /v1/stop stops every app, then the daemon.
type Apps struct {
	mu      sync.RWMutex
	servers map[string]*Server
	onStop  func()

	// Certificates, when set, gives one line per host name whose
	// certificate the daemon obtains from an ACME CA (what it serves,
	// when it expires, or what it waits for): GET /v1/certificates.
	Certificates func() []string

	// Dashboard, when set, mints a one-time login URL of the daemon's
	// dashboard (valid once, for 60 s): POST /v1/dashboard/login.
	Dashboard func() (string, error)
}

// DashboardLogin is the answer of POST /v1/dashboard/login.
type DashboardLogin struct {
	URL string `json:"url"`
}

// NewApps returns the handler over one Server per app (by name). onStop
// is called after a stop of every app.
func NewApps(servers map[string]*Server, onStop func()) *Apps {
	return &Apps{servers: servers, onStop: onStop}
}

// Set replaces the apps served (cutover reload adds or removes apps).
func (a *Apps) Set(servers map[string]*Server) {
	a.mu.Lock()
	a.servers = servers
	a.mu.Unlock()
}

// Names returns the names of the apps, sorted.
func (a *Apps) Names() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	names := make([]string, 0, len(a.servers))
	for n := range a.servers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (a *Apps) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	names := a.Names()
	name := r.URL.Query().Get("app")
	switch {
	case r.URL.Path == "/v1/apps" && r.Method == http.MethodGet:
		writeJSON(w, names)
		return
	case r.URL.Path == "/v1/certificates" && r.Method == http.MethodGet:
		lines := []string{}
		if a.Certificates != nil {
			lines = a.Certificates()
		}
		writeJSON(w, lines)
		return
	case r.URL.Path == "/v1/dashboard/login":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, KindUsage, fmt.Errorf("%s /v1/dashboard/login: login is POST", r.Method))
			return
		}
		if a.Dashboard == nil {
			writeError(w, KindNotFound, errors.New("this daemon serves no dashboard"))
			return
		}
		u, err := a.Dashboard()
		if err != nil {
			writeError(w, KindFailed, err)
			return
		}
		writeJSON(w, DashboardLogin{URL: u})
		return
	case r.URL.Path == "/v1/stop" && r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, KindUsage, fmt.Errorf("%s /v1/stop: stop is POST", r.Method))
		return
	case r.URL.Path == "/v1/stop" && len(names) > 1 && name != "":
		writeError(w, KindUsage, fmt.Errorf("stop stops the daemon and every app it runs (%s), not one: to take %s out, remove [apps.%s] from the file and run `cutover reload`", strings.Join(names, ", "), name, name))
		return
	case r.URL.Path == "/v1/stop" && len(names) > 1:
		// Stopping is the daemon's: every app stops with it.
		a.stopAll(w, r)
		return
	case name == "" && len(names) == 1:
		name = names[0]
	case name == "":
		writeError(w, KindUsage, fmt.Errorf("this daemon runs %d apps (%s): say which with --app NAME", len(names), strings.Join(names, ", ")))
		return
	}
	a.mu.RLock()
	s := a.servers[name]
	a.mu.RUnlock()
	if s == nil {
		writeError(w, KindNotFound, fmt.Errorf("no app %q here; the apps are %s", name, strings.Join(names, ", ")))
		return
	}
	s.ServeHTTP(w, r)
}

// stopAll stops every app's instances, then the daemon: refused while any
// app deploys.
func (a *Apps) stopAll(w http.ResponseWriter, r *http.Request) {
	a.mu.RLock()
	servers := make([]*Server, 0, len(a.servers))
	for _, s := range a.servers {
		servers = append(servers, s)
	}
	a.mu.RUnlock()
	for _, s := range servers {
		if p := s.eng.Progress(); p != nil {
			writeError(w, KindBusy, fmt.Errorf("a %s of %s is in flight (step %s): stop refused; wait for it or abort it", p.Kind, s.eng.Config().App.Name, p.Step))
			return
		}
	}
	for _, s := range servers {
		if err := s.eng.StopAll(r.Context()); err != nil {
			writeError(w, KindFailed, fmt.Errorf("stop %s: %w", s.eng.Config().App.Name, err))
			return
		}
	}
	writeJSON(w, map[string]string{"stopped": "ok"})
	if a.onStop != nil {
		a.onStop()
	}
}
