package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/errkind"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/traffic"
)

// OneTimeTTL is how long a token from Mint logs a browser in.
const OneTimeTTL = 60 * time.Second

// SessionTTL is how long a session cookie lasts after its login.
const SessionTTL = 12 * time.Hour

// WindowSecs is the window, in seconds, of a snapshot's Now: req/s, error
// rate and p50/p99 as the charts draw them.
const WindowSecs = 5

// CookieName is the session cookie's name.
const CookieName = "cutover_dashboard"

// CSRFHeader is the header a control must carry the session's CSRF token in.
const CSRFHeader = "X-Cutover-CSRF"

// Engine is what the dashboard reads and drives of an app's deploy engine:
// the calls the admin API makes (*deploy.Engine).
type Engine interface {
	Status(ctx context.Context) (deploy.Status, error)
	ListReleases(ctx context.Context) ([]deploy.ReleaseInfo, error)
	Deploys(ctx context.Context, limit int) ([]state.Deploy, error)
	Control(a deploy.Action) (deploy.ControlAnswer, error)
	Start(req deploy.Request) (*deploy.Run, error)
}

// Windower gives a release's traffic over the last d (*proxy.Proxy).
type Windower interface {
	Window(release string, d time.Duration) traffic.WindowStats
}

// App is one app the dashboard shows. Engine is nil while the app's engine
// is not up yet.
type App struct {
	Name   string
	Engine Engine
	Proxy  Windower
}

//go:embed assets
var assets embed.FS

// Server is the dashboard's handler.
type Server struct {
	apps  func() []App
	hub   *Hub
	token string // configured token; "" = only one-time tokens
	log   *slog.Logger
	now   func() time.Time
	mux   *http.ServeMux
	page  *template.Template

	mu       sync.Mutex
	oneTime  map[string]time.Time // token → expiry
	sessions map[string]session   // cookie value → session
	failed   map[string]*failures // client address → its failed logins

	// snapMu is held while a snapshot is taken: every open page and GET
	// /api/snapshot share the latest one, so that the app's state
	// database, on one connection that deploys write to, is read about
	// once a second however many pages are open.
	snapMu sync.Mutex
	last   Snapshot
	lastAt time.Time // zero: none yet

	// writeTimeout is how long a write of an event stream may wait for
	// a page that reads nothing: StreamWriteTimeout.
	writeTimeout time.Duration
}

// StreamWriteTimeout is how long a write of an /events stream may wait
// for the page to read before the stream ends.
const StreamWriteTimeout = 30 * time.Second

type session struct {
	csrf    string
	expires time.Time
}

// New returns the dashboard over apps (read at each request), whose
// engines pass their events to hub. token is [dashboard] token, "" for
// none.
func New(apps func() []App, hub *Hub, token string, log *slog.Logger) *Server {
	s := &Server{apps: apps, hub: hub, token: token, log: log.With("component", "dashboard"), now: time.Now,
		mux: http.NewServeMux(), oneTime: map[string]time.Time{}, sessions: map[string]session{}, failed: map[string]*failures{},
		writeTimeout: StreamWriteTimeout}
	s.page = template.Must(template.ParseFS(assets, "assets/index.html"))
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /api/snapshot", s.authed(s.snapshotJSON))
	s.mux.HandleFunc("GET /events", s.authed(s.events))
	s.mux.HandleFunc("POST /api/control", s.authed(s.control))
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	s.mux.ServeHTTP(w, r)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// Mint returns a token that logs one browser in, once, within OneTimeTTL.
func (s *Server) Mint() string {
	t := randomHex(16)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, exp := range s.oneTime {
		if now.After(exp) {
			delete(s.oneTime, k)
		}
	}
	s.oneTime[t] = now.Add(OneTimeTTL)
	return t
}

// login checks token against the configured one and the one-time ones (a
// one-time token is spent here), in constant time for each.
func (s *Server) login(token string) bool {
	if token == "" {
		return false
	}
	if s.token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) == 1 {
		return true
	}
	return s.loginOneTime(token)
}

// loginOneTime checks token against the one-time ones, and spends it.
func (s *Server) loginOneTime(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	ok := false
	for k, exp := range s.oneTime {
		if subtle.ConstantTimeCompare([]byte(token), []byte(k)) == 1 {
			delete(s.oneTime, k)
			ok = now.Before(exp)
		}
	}
	return ok
}

// session returns the request's session, if its cookie names a live one.
func (s *Server) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ss := range s.sessions {
		if subtle.ConstantTimeCompare([]byte(c.Value), []byte(k)) == 1 {
			if s.now().After(ss.expires) {
				delete(s.sessions, k)
				return session{}, false
			}
			return ss, true
		}
	}
	return session{}, false
}

func (s *Server) newSession(w http.ResponseWriter) {
	id := randomHex(32)
	s.mu.Lock()
	now := s.now()
	for k, ss := range s.sessions {
		if now.After(ss.expires) {
			delete(s.sessions, k)
		}
	}
	s.sessions[id] = session{csrf: randomHex(16), expires: now.Add(SessionTTL)}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(SessionTTL / time.Second)})
}

const loginHelp = `This dashboard shows nothing before a login.

Log in with one of:
  cutover dashboard                  prints a one-time login URL (valid once, for 60 s)
  http://HOST/?token=TOKEN           with [dashboard] token of cutover.toml
`

func (s *Server) unauthorized(w http.ResponseWriter, why string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprintf(w, "401 %s\n\n%s", why, loginHelp)
}

// index logs in with ?token= or serves the page to a session.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); q.Has("token") {
		addr := clientAddr(r)
		// A refused address still logs in with a one-time token: 128
		// random bits from the admin socket, nothing a guesser gets by
		// trying, and the way in for an operator whose address someone
		// else used up (another local user, a page the operator's
		// browser opened sending ?token=x to the dashboard).
		if wait, limited := s.limited(addr); limited && !s.loginOneTime(q.Get("token")) {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, "429 login refused: %d wrong tokens from %s within %s; try again in %s, or log in with the one-time URL `cutover dashboard` prints\n",
				MaxFailedLogins, addr, FailedLoginWindow, wait.Round(time.Second))
			return
		} else if !limited && !s.login(q.Get("token")) {
			if s.fail(addr) {
				s.log.Warn("dashboard login refused", "remote", r.RemoteAddr)
			}
			s.unauthorized(w, "login refused: the token is wrong, spent or older than 60 s")
			return
		}
		s.newSession(w)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	ss, ok := s.session(r)
	if !ok {
		s.unauthorized(w, "not logged in")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.page.Execute(w, map[string]string{"CSRF": ss.csrf}); err != nil {
		s.log.Warn("dashboard page", "err", err)
	}
}

func (s *Server) authed(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, ok := s.session(r)
		if !ok {
			s.unauthorized(w, "not logged in")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, ss)
	}
}

// AppSnapshot is one app as the dashboard shows it.
type AppSnapshot struct {
	Name     string               `json:"name"`
	Status   *deploy.Status       `json:"status,omitempty"`
	Releases []deploy.ReleaseInfo `json:"releases"`
	Deploys  []state.Deploy       `json:"deploys"`
	// Now is each serving release's traffic over the last WindowSecs.
	Now   map[string]traffic.WindowStats `json:"now"`
	Error string                         `json:"error,omitempty"`
}

// Snapshot is what GET /api/snapshot and each "snapshot" event carry.
type Snapshot struct {
	Time       time.Time     `json:"time"`
	WindowSecs int           `json:"window_secs"`
	Apps       []AppSnapshot `json:"apps"`
}

// deploysShown is how many past deploys a snapshot lists per app.
const deploysShown = 20

func (s *Server) snapshot(ctx context.Context) Snapshot {
	snap := Snapshot{Time: s.now().UTC(), WindowSecs: WindowSecs, Apps: []AppSnapshot{}}
	for _, a := range s.apps() {
		as := AppSnapshot{Name: a.Name, Releases: []deploy.ReleaseInfo{}, Deploys: []state.Deploy{}, Now: map[string]traffic.WindowStats{}}
		if a.Engine == nil {
			as.Error = "starting"
			snap.Apps = append(snap.Apps, as)
			continue
		}
		var errs []string
		if st, err := a.Engine.Status(ctx); err != nil {
			errs = append(errs, "status: "+err.Error())
		} else {
			as.Status = &st
			if a.Proxy != nil {
				for rel := range st.Weights {
					as.Now[rel] = a.Proxy.Window(rel, WindowSecs*time.Second)
				}
			}
		}
		if rs, err := a.Engine.ListReleases(ctx); err != nil {
			errs = append(errs, "releases: "+err.Error())
		} else if rs != nil {
			as.Releases = rs
		}
		if ds, err := a.Engine.Deploys(ctx, deploysShown); err != nil {
			errs = append(errs, "deploys: "+err.Error())
		} else if ds != nil {
			as.Deploys = ds
		}
		as.Error = strings.Join(errs, "; ")
		snap.Apps = append(snap.Apps, as)
	}
	return snap
}

// snapshotMaxAge is how old a shared snapshot may be when handed out:
// less than the streams' 1 s tick, so that each tick of a page brings a
// new one.
const snapshotMaxAge = 900 * time.Millisecond

// snapshotTimeout bounds the reads of one shared snapshot.
const snapshotTimeout = 10 * time.Second

// shared returns the latest snapshot if younger than snapshotMaxAge, or
// takes one. It is not bound to ctx's cancellation: a page that goes
// away while it is taken does not spoil it for the others.
func (s *Server) shared(ctx context.Context) Snapshot {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	now := s.now()
	if !s.lastAt.IsZero() && !now.Before(s.lastAt) && now.Sub(s.lastAt) < snapshotMaxAge {
		return s.last
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), snapshotTimeout)
	defer cancel()
	s.last, s.lastAt = s.snapshot(ctx), now
	return s.last
}

func (s *Server) snapshotJSON(w http.ResponseWriter, r *http.Request, _ session) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.shared(r.Context())) //nolint:errcheck // client gone
}

// events streams Server-Sent Events: a snapshot at once and every second,
// and each deploy event as it happens, until the session expires.
func (s *Server) events(w http.ResponseWriter, r *http.Request, ss session) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	replay, evs, cancel := s.hub.subscribe()
	defer cancel()
	rc := http.NewResponseController(w)
	send := func(kind string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		// A page that reads nothing ends its stream rather than hold
		// the connection for ever.
		_ = rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	if !send("snapshot", s.shared(ctx)) {
		return
	}
	for _, ev := range replay {
		if !send("deploy", ev) {
			return
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-evs:
			if !ok {
				return // fell behind: the browser reconnects and replays
			}
			if !send("deploy", ev) {
				return
			}
		case <-tick.C:
			if s.now().After(ss.expires) {
				return // the browser reconnects and gets a 401
			}
			if !send("snapshot", s.shared(ctx)) {
				return
			}
		}
	}
}

type controlRequest struct {
	App    string `json:"app"`
	Action string `json:"action"`
}

type controlAnswer struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
	Kind    string `json:"kind,omitempty"`
}

func writeAnswer(w http.ResponseWriter, code int, a controlAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(a) //nolint:errcheck // client gone
}

// sameOrigin reports whether r's Origin, when it has one, is its host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser's cross-origin request: the CSRF header still guards
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// control passes an action to an app's engine. The deploy goes on in the
// daemon; its events reach the page through /events.
func (s *Server) control(w http.ResponseWriter, r *http.Request, ss session) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(ss.csrf)) != 1 {
		writeAnswer(w, http.StatusForbidden, controlAnswer{Error: "missing or wrong " + CSRFHeader + " header: reload the page", Kind: string(errkind.Refused)})
		return
	}
	if !sameOrigin(r) {
		writeAnswer(w, http.StatusForbidden, controlAnswer{Error: "cross-origin control refused", Kind: string(errkind.Refused)})
		return
	}
	var req controlRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeAnswer(w, http.StatusBadRequest, controlAnswer{Error: "decode control request: " + err.Error(), Kind: string(errkind.Usage)})
		return
	}
	var eng Engine
	var names []string
	for _, a := range s.apps() {
		names = append(names, a.Name)
		if a.Name == req.App {
			eng = a.Engine
		}
	}
	if eng == nil {
		writeAnswer(w, http.StatusNotFound, controlAnswer{Error: fmt.Sprintf("no app %q running here; the apps are %s", req.App, strings.Join(names, ", ")), Kind: string(errkind.NotFound)})
		return
	}
	s.log.Info("dashboard control", "app", req.App, "action", req.Action, "remote", r.RemoteAddr)
	if req.Action == "rollback" {
		if _, err := eng.Start(deploy.Request{Rollback: true}); err != nil {
			s.refused(w, err)
			return
		}
		writeAnswer(w, http.StatusOK, controlAnswer{OK: true, Message: "rollback of " + req.App + " to the previous release started"})
		return
	}
	a, err := deploy.ParseAction(req.Action)
	if err != nil {
		writeAnswer(w, http.StatusBadRequest, controlAnswer{Error: err.Error() + " (or rollback)", Kind: string(errkind.Usage)})
		return
	}
	ans, err := eng.Control(a)
	if err != nil {
		s.refused(w, err)
		return
	}
	writeAnswer(w, http.StatusOK, controlAnswer{OK: true, Message: ans.Message})
}

func (s *Server) refused(w http.ResponseWriter, err error) {
	kind := deploy.KindOf(err)
	if errors.Is(err, deploy.ErrNoDeploy) {
		kind = errkind.NotFound
	}
	writeAnswer(w, kind.HTTPStatus(), controlAnswer{Error: err.Error(), Kind: string(kind)})
}
