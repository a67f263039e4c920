package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/fleet"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/state"
	"github.com/cutover/cutover/internal/supervisor"
)

// waitTimeout bounds every call of these tests; it is a failure deadline,
// not a pacing delay.
const waitTimeout = 20 * time.Second

// daemon is a real Engine served by the API on a unix socket, the way
// `cutover serve` wires them, with the test binary as the app.
type daemon struct {
	t      *testing.T
	root   string
	cfg    *config.Config
	store  *state.Store
	eng    *deploy.Engine
	client *Client
	socket string
}

// startDaemon writes a cutover.toml with the given extra [app.env] and
// [release] lines, and serves the API for an engine on it.
func startDaemon(t *testing.T, env, release []string) *daemon {
	t.Helper()
	// A short directory: a unix socket path must fit in 108 bytes.
	root, err := os.MkdirTemp("", "cutover-api-")
	if err != nil {
		t.Fatal(err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf(`data_dir = "data"
[app]
name = "apitest"
command = %s
instances = 1
stop_timeout = "5s"
[app.env]
%s = "1"
GORACE = "atexit_sleep_ms=0"
%s
[app.health]
path = "/healthz"
interval = "50ms"
healthy_after = 1
boot_timeout = "10s"
[proxy]
listen = "127.0.0.1:0"
drain_timeout = "2s"
[release]
%s
`, strconv.Quote("'"+exe+"'"), appEnv, strings.Join(env, "\n"), strings.Join(release, "\n"))
	if err := os.WriteFile(filepath.Join(root, "cutover.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(root, "cutover.toml"))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(cfg.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	px := proxy.New(proxy.Options{App: cfg.App.Name})
	eng, err := deploy.New(deploy.Options{Config: cfg, Store: store, Proxy: px, Processes: supervisor.Groups{},
		NewFleet: func(o deploy.FleetOptions) deploy.Fleet {
			return fleet.New(fleet.Options{Config: cfg, Store: store, Proxy: px, Releases: o.Releases,
				StateFailed: o.StateFailed, Note: o.Note})
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := eng.StopAll(ctx); err != nil {
			t.Errorf("stop instances: %v", err)
		}
		eng.Close()
	})
	if err := eng.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", cfg.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewServer(eng, slog.New(slog.DiscardHandler), nil)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("api server: %v", err)
		}
	})
	return &daemon{t: t, root: root, cfg: cfg, store: store, eng: eng, client: NewClient(cfg.SocketPath()), socket: cfg.SocketPath()}
}

// source writes a release source directory labelled name whose app
// reports version name.
func (d *daemon) source(name string) string {
	d.t.Helper()
	dir := filepath.Join(d.root, "src", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(name+"\n"), 0o644); err != nil {
		d.t.Fatal(err)
	}
	return dir
}

func (d *daemon) deploy(name string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	res, err := d.client.Deploy(ctx, deploy.Request{Source: d.source(name)}, nil)
	if err != nil {
		d.t.Fatalf("deploy %s: %v", name, err)
	}
	return res.Release
}

// raw GETs path on the socket and returns the body as is.
func (d *daemon) raw(path string) string {
	d.t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.socket)
	}}}
	resp, err := c.Get("http://cutover" + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return string(b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestDeployStreamsEventsInOrder(t *testing.T) {
	d := startDaemon(t, nil, nil)
	ctx := ctxT(t)
	var evs []deploy.Event
	res, err := d.client.Deploy(ctx, deploy.Request{Source: d.source("v1")}, func(ev deploy.Event) { evs = append(evs, ev) })
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if len(evs) == 0 || !cmp.Equal(evs[len(evs)-1], res) {
		t.Fatalf("the returned event is not the last one streamed: got %+v", res)
	}
	if res.Type != "result" || !res.OK || !strings.HasSuffix(res.Release, "-v1") || res.DeployID == 0 {
		t.Errorf("result: got %+v, want an ok result for the v1 release", res)
	}
	var steps []string
	for _, ev := range evs {
		if ev.Type == "step" {
			steps = append(steps, ev.Step.String()+":"+ev.Status)
		}
	}
	want := []string{"lock:start", "lock:ok", "prepare:start", "prepare:ok", "check:start", "check:ok", "boot:start", "boot:ok",
		"switch:start", "switch:ok", "drain:start", "drain:ok", "finish:start", "finish:ok"}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("step events (-want +got):\n%s", diff)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.Before(evs[i-1].Time) {
			t.Errorf("event %d (%s %s) is older than event %d", i, evs[i].Type, evs[i].Step, i-1)
		}
	}

	st, err := d.client.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.Active != res.Release || st.App != "apitest" || st.Deploy != nil {
		t.Errorf("status: got app %q active %q deploy %+v, want apitest, %q, none", st.App, st.Active, st.Deploy, res.Release)
	}
	if len(st.Instances) != 1 || st.Instances[0].Release != res.Release || !st.Instances[0].Healthy || st.Instances[0].PID == 0 {
		t.Errorf("status instances: got %+v, want one healthy instance of %s", st.Instances, res.Release)
	}
	hist, err := d.client.Deploys(ctx, 10)
	if err != nil {
		t.Fatalf("deploys: %v", err)
	}
	if len(hist) != 1 || hist[0].ID != res.DeployID || hist[0].State != state.DeploySucceeded || len(hist[0].Steps) != 7 {
		t.Errorf("history: got %+v, want deploy #%d succeeded with 7 steps", hist, res.DeployID)
	}
}

func TestDeployRefusesRelativeSource(t *testing.T) {
	d := startDaemon(t, nil, nil)
	_, err := d.client.Deploy(ctxT(t), deploy.Request{Source: "relative/dir"}, nil)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Kind != KindUsage {
		t.Errorf("deploy of a relative path: got %v, want an *Error of kind %q", err, KindUsage)
	}
}

func TestReleasesRedactEnv(t *testing.T) {
	const secret = "s3cr3t-token-value"
	d := startDaemon(t, []string{`SECRET_TOKEN = "` + secret + `"`}, nil)
	v1 := d.deploy("v1")
	rels, err := d.client.Releases(ctxT(t))
	if err != nil {
		t.Fatalf("releases: %v", err)
	}
	if len(rels) != 1 {
		t.Fatalf("releases: got %d, want 1", len(rels))
	}
	r := rels[0]
	if r.ID != v1 || r.Status != string(state.ReleaseLive) || !r.Current || !r.OnDisk || r.LiveSince.IsZero() {
		t.Errorf("release: got %+v, want %s live, current, on disk", r, v1)
	}
	if r.Meta == nil {
		t.Fatalf("release %s has no meta", r.ID)
	}
	if got := r.Meta.Env["SECRET_TOKEN"]; !strings.HasPrefix(got, "hmac-sha256:") {
		t.Errorf("meta env SECRET_TOKEN: got %q, want a keyed digest", got)
	}
	if r.Meta.EnvDigest == "" || r.Meta.ConfigDigest == "" || r.Meta.Source == "" {
		t.Errorf("meta: got %+v, want env and config digests and the source", r.Meta)
	}
	if body := d.raw("/v1/releases"); strings.Contains(body, secret) {
		t.Errorf("GET /v1/releases shows the secret value:\n%s", body)
	}
}

func TestBusyAndControl(t *testing.T) {
	d := startDaemon(t, nil, nil)
	ctx := ctxT(t)
	v1 := d.deploy("v1")

	ev, err := d.client.Deploy(ctx, deploy.Request{Source: d.source("v2"), Preview: true}, nil)
	if err != nil || ev.Type != "preview" {
		t.Fatalf("preview deploy: got %+v, %v; want the preview event", ev, err)
	}

	_, err = d.client.Deploy(ctx, deploy.Request{Source: d.source("v3")}, nil)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Kind != KindBusy || !strings.Contains(apiErr.Msg, "another deploy is in progress") {
		t.Errorf("a second deploy: got %v, want an *Error of kind %q", err, KindBusy)
	}

	// An action the deploy cannot honour now is refused with why; one it
	// honours is answered with what will happen.
	if _, err := d.client.Control(ctx, deploy.ActionResume, nil); !errors.As(err, &apiErr) || apiErr.Kind != KindRefused ||
		!strings.Contains(apiErr.Msg, "resume refused") || !strings.Contains(apiErr.Msg, "step preview): not paused") {
		t.Errorf("resume when not paused: got %v, want an *Error of kind %q saying not paused", err, KindRefused)
	}
	if statusOf(KindRefused) != http.StatusPreconditionFailed {
		t.Errorf("status of a refusal: got %d, want %d", statusOf(KindRefused), http.StatusPreconditionFailed)
	}
	if ev, err := d.client.Control(ctx, deploy.ActionPause, nil); err != nil || !strings.HasPrefix(ev.Message, "pause: the preview's clock") {
		t.Errorf("pause during the preview: got %+v, %v; want what will happen", ev, err)
	}

	var evs []deploy.Event
	res, err := d.client.Control(ctx, deploy.ActionAbort, func(ev deploy.Event) { evs = append(evs, ev) })
	if !errors.As(err, &apiErr) || apiErr.Kind != KindAborted {
		t.Fatalf("abort: got %v, want an *Error of kind %q", err, KindAborted)
	}
	if res.Type != "result" || res.OK || res.Release != v1 {
		t.Errorf("abort result: got %+v, want a failed result with %s live", res, v1)
	}
	for _, ev := range evs {
		if ev.Type == "preview" {
			t.Errorf("control streamed events from before it was asked: %+v", ev)
		}
	}
	if len(evs) == 0 || evs[0].Type != "info" || !strings.HasPrefix(evs[0].Message, "abort: stopping the preview of ") {
		t.Errorf("abort's first event: got %+v, want its acknowledgement", evs)
	}

	_, err = d.client.Control(ctx, deploy.ActionPause, nil)
	if !errors.As(err, &apiErr) || apiErr.Kind != KindNotFound {
		t.Errorf("control with nothing in flight: got %v, want an *Error of kind %q", err, KindNotFound)
	}
	st, err := d.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != v1 || len(st.Instances) != 1 || st.Instances[0].Release != v1 {
		t.Errorf("status after the abort: got active %q, instances %+v; want only %s", st.Active, st.Instances, v1)
	}
}

func TestLogsTail(t *testing.T) {
	d := startDaemon(t, nil, nil)
	v1 := d.deploy("v1")
	logPath := filepath.Join(d.cfg.LogsDir(), v1, v1+"-1.log")
	// The instance's log writer, a process of its own, creates the file
	// when it starts: soon after the instance, not before the deploy ends.
	var f *os.File
	for deadline := time.Now().Add(5 * time.Second); ; {
		var err error
		if f, err = os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance log: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(f, "line %d\n", i)
	}
	f.Close()

	var buf bytes.Buffer
	if err := d.client.Logs(ctxT(t), "", "", 3, false, &buf); err != nil {
		t.Fatalf("logs: %v", err)
	}
	if got, want := buf.String(), "line 3\nline 4\nline 5\n"; got != want {
		t.Errorf("logs with lines=3: got %q, want %q", got, want)
	}

	buf.Reset()
	if err := d.client.Logs(ctxT(t), v1, v1+"-1", 1, false, &buf); err != nil {
		t.Fatalf("logs of one instance: %v", err)
	}
	if got, want := buf.String(), "line 5\n"; got != want {
		t.Errorf("logs of %s-1 with lines=1: got %q, want %q", v1, got, want)
	}

	err := d.client.Logs(ctxT(t), "20000101T000000-nope", "", 3, false, &buf)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Kind != KindNotFound {
		t.Errorf("logs of an unknown release: got %v, want an *Error of kind %q", err, KindNotFound)
	}
	err = d.client.Logs(ctxT(t), "../data", "", 3, false, &buf)
	if !errors.As(err, &apiErr) || apiErr.Kind != KindUsage {
		t.Errorf("logs of %q: got %v, want an *Error of kind %q", "../data", err, KindUsage)
	}
}

func TestPrune(t *testing.T) {
	d := startDaemon(t, nil, []string{"keep = 2"})
	d.deploy("v1")
	d.deploy("v2")
	const leftover = "20000101T000000-old"
	if err := os.MkdirAll(d.eng.Releases().Dir(leftover), 0o755); err != nil {
		t.Fatal(err)
	}
	removed, err := d.client.Prune(ctxT(t))
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if diff := cmp.Diff([]string{leftover}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	removed, err = d.client.Prune(ctxT(t))
	if err != nil || removed == nil || len(removed) != 0 {
		t.Errorf("second prune: got %#v, %v; want an empty list", removed, err)
	}
}

func TestNoDaemon(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "cutover.sock"))
	if _, err := c.Status(ctxT(t)); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("status with no daemon: got %v, want ErrNoDaemon", err)
	}
}

// A deploy's event stream may carry a long output line (a build printing
// a minified asset, say): the client's reader grows to it.
func TestReadEventsLongLine(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	var stream strings.Builder
	for _, ev := range []deploy.Event{
		{Type: "output", Step: deploy.StepPrepare, Lines: []string{long}},
		{Type: "result", OK: true, Message: "done"},
	} {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		stream.Write(b)
		stream.WriteByte('\n')
	}
	resp := &http.Response{Body: io.NopCloser(strings.NewReader(stream.String()))}
	var got []deploy.Event
	res, err := readEvents(resp, false, func(ev deploy.Event) { got = append(got, ev) })
	if err != nil || !res.OK || res.Message != "done" {
		t.Fatalf("readEvents = %+v, %v; want the result event", res, err)
	}
	if len(got) != 2 || len(got[0].Lines) != 1 || got[0].Lines[0] != long {
		t.Fatalf("readEvents delivered %d events; want the long output line whole, then the result", len(got))
	}
}
