package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/errkind"
	"github.com/cutover/cutover/internal/fleet"
	"github.com/cutover/cutover/internal/state"
)

// Error kinds carried in error bodies and result events.
const (
	KindBusy     = string(errkind.Busy)
	KindConfig   = string(errkind.Config)
	KindUsage    = string(errkind.Usage)
	KindRefused  = string(errkind.Refused)
	KindFailed   = string(errkind.Failed)
	KindNotFound = string(errkind.NotFound)
	KindAborted  = string(errkind.Aborted)
)

// Server serves the admin API for one engine.
type Server struct {
	eng    *deploy.Engine
	log    *slog.Logger
	onStop func() // asks the daemon to exit after `stop`
	mux    *http.ServeMux
}

// NewServer returns the API handler. onStop is called after a stop request
// stopped the app.
func NewServer(eng *deploy.Engine, logger *slog.Logger, onStop func()) *Server {
	s := &Server{eng: eng, log: logger.With("component", "api"), onStop: onStop, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/status", s.status)
	s.mux.HandleFunc("GET /v1/releases", s.releases)
	s.mux.HandleFunc("GET /v1/deploys", s.deploys)
	s.mux.HandleFunc("POST /v1/deploys", s.deploy)
	s.mux.HandleFunc("GET /v1/logs", s.logs)
	s.mux.HandleFunc("POST /v1/stop", s.stop)
	s.mux.HandleFunc("POST /v1/control", s.control)
	s.mux.HandleFunc("POST /v1/releases/prune", s.prune)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// kindOf classifies an error; the single place errors become kinds.
func kindOf(err error) string {
	switch {
	case errors.Is(err, deploy.ErrNoDeploy), errors.Is(err, state.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return KindNotFound
	}
	return string(deploy.KindOf(err))
}

// statusOf is the HTTP status of an error kind (errkind's table).
func statusOf(kind string) int { return errkind.Kind(kind).HTTPStatus() }

type errorBody struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

func writeError(w http.ResponseWriter, kind string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(statusOf(kind))
	json.NewEncoder(w).Encode(errorBody{Error: err.Error(), Kind: kind}) //nolint:errcheck // client gone
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // client gone
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.eng.Status(r.Context())
	if err != nil {
		writeError(w, kindOf(err), err)
		return
	}
	writeJSON(w, st)
}

// Release is one release as listed by `cutover releases`.
type Release = deploy.ReleaseInfo

func (s *Server) releases(w http.ResponseWriter, r *http.Request) {
	out, err := s.eng.ListReleases(r.Context())
	if err != nil {
		writeError(w, kindOf(err), err)
		return
	}
	writeJSON(w, out)
}

func (s *Server) deploys(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit")) //nolint:errcheck // 0 = all
	ds, err := s.eng.Deploys(r.Context(), limit)
	if err != nil {
		writeError(w, kindOf(err), err)
		return
	}
	writeJSON(w, ds)
}

// deploy starts a deploy and streams its events. The deploy goes on in
// the daemon if the client goes away: stopping half-way would be worse. A
// preview deploy's stream ends at its "preview" event; `promote` or
// `abort` stream the rest.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	var req deploy.Request
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, KindUsage, fmt.Errorf("decode deploy request: %w", err))
		return
	}
	if !req.Rollback && req.Git == "" && !filepath.IsAbs(req.Source) {
		writeError(w, KindUsage, fmt.Errorf("deploy source %q must be an absolute path", req.Source))
		return
	}
	run, err := s.eng.Start(req)
	if err != nil {
		writeError(w, kindOf(err), err)
		return
	}
	s.stream(w, r, run, 0, req.Preview)
}

// stream writes a run's events from index from as NDJSON until its result
// (or, with untilPreview, its preview event) or until the client leaves.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, run *deploy.Run, from int, untilPreview bool) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for i := from; ; {
		evs, done, err := run.Next(r.Context(), i)
		if err != nil {
			return // client gone; the deploy goes on
		}
		i += len(evs)
		for _, ev := range evs {
			if ev.Type == "result" && !ev.OK {
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
			if untilPreview && ev.Type == "preview" {
				if flusher != nil {
					flusher.Flush()
				}
				return
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		if done {
			return
		}
	}
}

type controlRequest struct {
	Action deploy.Action `json:"action"`
}

// controlAnswer is the answer to pause and resume: what will happen.
type controlAnswer struct {
	Action  deploy.Action `json:"action"`
	Message string        `json:"message"`
}

// control passes promote, abort, pause or resume to the deploy in flight.
// An action the deploy cannot honour in its step is refused (412, kind
// "refused") with why; an honoured one is acknowledged with what will
// happen. promote and abort then stream the deploy's events, that
// acknowledgement first, to its end (or to its next preview); pause and
// resume answer at once.
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	var req controlRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, KindUsage, fmt.Errorf("decode control request: %w", err))
		return
	}
	if req.Action == 0 {
		writeError(w, KindUsage, errors.New("control request without an action: want promote, abort, pause or resume"))
		return
	}
	cur := s.eng.Current()
	if cur == nil {
		writeError(w, KindNotFound, fmt.Errorf("%w: nothing to %s", deploy.ErrNoDeploy, req.Action))
		return
	}
	from := cur.Len()
	ans, err := s.eng.Control(req.Action)
	if err != nil {
		writeError(w, kindOf(err), err)
		return
	}
	run := ans.Run
	if run != cur {
		from = 0 // the deploy asked about ended and another began
	}
	if req.Action == deploy.ActionPause || req.Action == deploy.ActionResume {
		writeJSON(w, controlAnswer{Action: req.Action, Message: ans.Message})
		return
	}
	s.stream(w, r, run, from, false)
}

func (s *Server) prune(w http.ResponseWriter, r *http.Request) {
	removed, err := s.eng.Prune(r.Context())
	if err != nil {
		writeError(w, kindOf(err), err)
		return
	}
	if removed == nil {
		removed = []string{}
	}
	writeJSON(w, map[string][]string{"removed": removed})
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lines := 100
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, KindUsage, fmt.Errorf("lines=%q: want a whole number", v))
			return
		}
		lines = n
	}
	release := q.Get("release")
	if release == "" {
		var err error
		if release, err = s.eng.Live(r.Context()); err != nil {
			writeError(w, kindOf(err), err)
			return
		}
		if release == "" {
			writeError(w, KindNotFound, errors.New("no release is live yet; name one: cutover logs RELEASE"))
			return
		}
	}
	if strings.ContainsAny(release, `/\`) || strings.HasPrefix(release, ".") {
		writeError(w, KindUsage, fmt.Errorf("release %q: not a release id", release))
		return
	}
	files, err := s.eng.LogFiles(release, q.Get("instance"))
	if err != nil {
		writeError(w, KindNotFound, err)
		return
	}
	if len(files) == 0 {
		writeError(w, KindNotFound, fmt.Errorf("no log files for release %s", release))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	flusher, _ := w.(http.Flusher)
	prefix := len(files) > 1
	for _, f := range files {
		for _, l := range fleet.TailFile(f, lines) {
			writeLogLine(w, prefix, f, l)
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	if q.Get("follow") != "1" {
		return
	}
	follow(r.Context(), w, flusher, files, prefix)
}

func writeLogLine(w io.Writer, prefix bool, file, line string) {
	if prefix {
		fmt.Fprintf(w, "%s | %s\n", strings.TrimSuffix(filepath.Base(file), ".log"), line)
		return
	}
	fmt.Fprintln(w, line)
}

// follow streams lines appended to files until ctx ends. It notices
// copy-truncate rotation (the file shrinking) and starts over at 0.
func follow(ctx context.Context, w io.Writer, flusher http.Flusher, files []string, prefix bool) {
	offsets := make([]int64, len(files))
	for i, f := range files {
		if fi, err := os.Stat(f); err == nil {
			offsets[i] = fi.Size()
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i, f := range files {
			offsets[i] = copyNew(w, prefix, f, offsets[i])
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func copyNew(w io.Writer, prefix bool, file string, off int64) int64 {
	fh, err := os.Open(file)
	if err != nil {
		return off
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return off
	}
	if fi.Size() < off {
		off = 0 // rotated
	}
	if fi.Size() == off {
		return off
	}
	if _, err := fh.Seek(off, io.SeekStart); err != nil {
		return off
	}
	sc := bufio.NewScanner(io.LimitReader(fh, fi.Size()-off))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		writeLogLine(w, prefix, file, sc.Text())
	}
	return fi.Size()
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	if p := s.eng.Progress(); p != nil {
		writeError(w, KindBusy, &deploy.BusyError{Running: *p})
		return
	}
	if err := s.eng.StopAll(r.Context()); err != nil {
		writeError(w, KindFailed, err)
		return
	}
	writeJSON(w, map[string]string{"stopped": "ok"})
	if s.onStop != nil {
		s.onStop()
	}
}

// WriteError writes err as the API's error body with the status of kind;
// for a daemon's own refusals in front of the Server (an upgrade handing
// over).
func WriteError(w http.ResponseWriter, kind string, err error) { writeError(w, kind, err) }
