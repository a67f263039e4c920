// Package demo tells cutover's whole story in a temporary directory with
// nothing installed: it starts a real daemon (this same binary, `serve`),
// ships releases of the built-in demo app under real load — a good one, a
// second good one, a broken one, a rollback, a bad canary — then the
// database's story on SQLite: a migration that would break the live
// release refused by the schema preview, the same change split into
// expand/contract, and a breaking rename shipped held; and it prints what
// every request saw. `cutover demo` runs it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/freeport"
	"github.com/cutover/cutover/internal/load"
)

// Options configure Run.
type Options struct {
	Out  io.Writer
	Exe  string // the cutover binary; default os.Executable()
	Dir  string // work directory; default a new temp dir
	Keep bool   // leave the daemon and app running at the end
	Rate int    // requests per second of the load; default 200
	// Pause is how long each steady phase lasts. Default 2s.
	Pause time.Duration
}

// Summary is what the demo measured.
type Summary struct {
	Report   load.Report
	Dir      string
	ProxyURL string
}

type story struct {
	opts   Options
	out    io.Writer
	dir    string
	cfg    string
	client *api.Client
	daemon *exec.Cmd
	url    string
	// blogRep is what the second app's clients saw.
	blogRep load.Report
}

// Run runs the demo and returns what it measured. It fails if any request
// failed or was answered by the broken release.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Rate <= 0 {
		opts.Rate = 200
	}
	if opts.Pause <= 0 {
		opts.Pause = 2 * time.Second
	}
	if opts.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return Summary{}, fmt.Errorf("find the cutover binary: %w", err)
		}
		opts.Exe = exe
	}
	s := &story{opts: opts, out: opts.Out}
	if err := s.setup(); err != nil {
		return Summary{}, err
	}
	sum := Summary{Dir: s.dir, ProxyURL: s.url}
	keep := false
	defer func() {
		if !keep {
			s.teardown()
		}
	}()
	if err := s.startDaemon(ctx); err != nil {
		return sum, err
	}
	rep, err := s.play(ctx)
	sum.Report = rep
	if err != nil {
		return sum, err
	}
	s.say("")
	s.say("What every request saw (load: %d req/s, 20%% on fresh connections):", opts.Rate)
	rep.Print(s.out)
	s.say("")
	b := s.blogRep.Total
	s.say("And the other app, blog (Host: %s, %d req/s), over the same time: %d requests, %d failed, answered by %s.",
		blogHost, opts.Rate/4, b.Requests, b.Failed, b.VersionList())
	s.say("")
	var bad []string
	canaryFailed := 0
	for _, p := range rep.Phases {
		if p.Name == canaryPhase {
			canaryFailed = p.Failed
		}
	}
	if n := rep.Total.Failed - canaryFailed; n > 0 {
		bad = append(bad, fmt.Sprintf("%d of %d requests failed outside the canary", n, rep.Total.Requests))
	}
	if n := rep.Total.Versions["v3"]; n > 0 {
		bad = append(bad, fmt.Sprintf("%d requests were answered by the broken v3", n))
	}
	if b := s.blogRep.Total; b.Failed > 0 || b.Versions["blog1"] != b.Requests || b.Requests == 0 {
		bad = append(bad, fmt.Sprintf("the other app saw %d failed of %d requests, answered by %s", b.Failed, b.Requests, b.VersionList()))
	}
	if n := rep.Total.Versions["v5-drop"]; n > 0 {
		bad = append(bad, fmt.Sprintf("%d requests were answered by the refused v5-drop", n))
	}
	if share := float64(canaryFailed) / float64(max(1, rep.Total.Requests)); share > 0.02 {
		bad = append(bad, fmt.Sprintf("the bad canary failed %.1f%% of all requests (more than 2%%)", 100*share))
	}
	if opts.Keep {
		keep = true
		s.say("The daemon and the app keep running:")
		s.say("  app (through the proxy):  %s", s.url)
		s.say("  config:                   %s", s.cfg)
		s.say("  try:    %s -c %s status", opts.Exe, s.cfg)
		s.say("          %s -c %s releases", opts.Exe, s.cfg)
		s.say("          %s -c %s --app demo deploy %s", opts.Exe, s.cfg, filepath.Join(s.dir, "src", "v2"))
		s.say("  stop:   %s -c %s stop && rm -rf %s", opts.Exe, s.cfg, s.dir)
	}
	if len(bad) > 0 {
		return sum, errors.New(strings.Join(bad, "; "))
	}
	s.say("%d requests: 0 failed across 5 deploys (one of them held for a breaking schema change),", rep.Total.Requests)
	s.say("1 aborted deploy, 1 refused schema change and 1 rollback; the bad canary")
	s.say("cost %d requests (%.2f%% of all) before the proxy rolled it back on its own. That is cutover.",
		canaryFailed, 100*float64(canaryFailed)/float64(max(1, rep.Total.Requests)))
	return sum, nil
}

func (s *story) say(format string, args ...any) { fmt.Fprintf(s.out, format+"\n", args...) }

func (s *story) setup() error {
	dir := s.opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "cutover-demo-")
		if err != nil {
			return fmt.Errorf("create demo dir: %w", err)
		}
		dir = d
	}
	s.dir = dir
	// Every release reads the database on each request to / and migrates
	// it itself (`demo-app migrate`, run by the release phase).
	const items = "CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT NOT NULL, note TEXT);\n" +
		"INSERT INTO items VALUES (1, 'cutover', 'ships without a failed request');\n"
	readNote := "DEMO_QUERY=SELECT note FROM items WHERE id = 1\n"
	releases := map[string]demoRelease{
		"v1": {env: readNote},
		"v2": {env: readNote},
		// v3 is broken: it dies at boot, as a release with a bad migration
		// or a missing setting would.
		"v3": {env: readNote + "DEMO_FAIL_BOOT=1\n"},
		// v4 boots and passes its health checks, but fails 30% of requests:
		// only real traffic shows it.
		"v4": {env: readNote + "DEMO_ERROR_RATE=0.3\n"},
		// v5-drop reads only the title and drops the note in its own
		// migrations: while v1 serves, that breaks every page of v1.
		"v5-drop": {env: "DEMO_QUERY=SELECT title FROM items WHERE id = 1\n",
			db: map[string]string{"002_drop_note.sql": "ALTER TABLE items DROP COLUMN note;\n"}},
		// v5 is the same change split: the code stops reading the note,
		// and the drop is a contract migration, run once v1 is gone.
		"v5": {env: "DEMO_QUERY=SELECT title FROM items WHERE id = 1\n",
			db: map[string]string{"contract/002_drop_note.sql": "ALTER TABLE items DROP COLUMN note;\n"}},
		// v6 renames title to name: no release can run on both schemas,
		// so it ships held.
		"v6": {env: "DEMO_QUERY=SELECT name FROM items WHERE id = 1\n",
			db: map[string]string{"contract/002_drop_note.sql": "ALTER TABLE items DROP COLUMN note;\n",
				"003_rename_title.sql": "ALTER TABLE items RENAME COLUMN title TO name;\n"}},
		// v7 is v6 again, deployed while the other app is under load.
		"v7": {env: "DEMO_QUERY=SELECT name FROM items WHERE id = 1\n",
			db: map[string]string{"contract/002_drop_note.sql": "ALTER TABLE items DROP COLUMN note;\n",
				"003_rename_title.sql": "ALTER TABLE items RENAME COLUMN title TO name;\n"}},
		// blog1 is the other app of the daemon, on blog.localhost.
		"blog1": {},
	}
	for v, rel := range releases {
		rd := filepath.Join(dir, "src", v)
		if err := os.MkdirAll(filepath.Join(rd, "db", "contract"), 0o755); err != nil {
			return fmt.Errorf("create demo release %s: %w", v, err)
		}
		if err := os.WriteFile(filepath.Join(rd, "VERSION"), []byte(v+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(rd, "demo.env"), []byte(rel.env), 0o644); err != nil {
			return err
		}
		files := map[string]string{"001_items.sql": items}
		for name, body := range rel.db {
			files[name] = body
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(rd, "db", name), []byte(body), 0o644); err != nil {
				return err
			}
		}
	}
	port, err := freeport.Pick()
	if err != nil {
		return err
	}
	s.url = fmt.Sprintf("http://127.0.0.1:%d/", port)
	s.cfg = filepath.Join(dir, "cutover.toml")
	dbURL := "sqlite://" + filepath.Join(dir, "app.db")
	toml := fmt.Sprintf(`# cutover.toml written by cutover demo
data_dir = "data"

[proxy]
listen = "127.0.0.1:%[6]d"
drain_timeout = "5s"

# Two apps on one port, routed by the request's Host: "demo" takes every
# host but blog.localhost (default = true); "blog" answers blog.localhost.
[apps.demo]
command = %[1]s
instances = 2
stop_timeout = "5s"
default = true

[apps.demo.env]
DEMO_BOOT_DELAY = "300ms"   # a slow boot, like a JVM's
DATABASE_URL = %[2]s

[apps.demo.database]
url = %[2]s
# The app migrates its own database: cutover runs its tool once per deploy,
# before boot, after trying it on a copy of the database (the schema preview).
migrate_command = %[3]s
contract_command = %[4]s
contract = "auto"
preview_data = ["demo_schema_version"]   # the demo app's own version table

[apps.demo.health]
path = "/healthz"
interval = "200ms"
healthy_after = 2
boot_timeout = "15s"

[apps.demo.deploy]
strategy = "bluegreen"

[apps.blog]
command = %[1]s
instances = 1
stop_timeout = "5s"
hosts = [%[5]q]

[apps.blog.health]
path = "/healthz"
interval = "200ms"
healthy_after = 2
`, strconv.Quote(shellQuote(s.opts.Exe)+" demo-app"), strconv.Quote(dbURL),
		strconv.Quote(shellQuote(s.opts.Exe)+" demo-app migrate"), strconv.Quote(shellQuote(s.opts.Exe)+" demo-app migrate --contract"), blogHost, port)
	return os.WriteFile(s.cfg, []byte(toml), 0o644)
}

// demoRelease is one release of the demo: its demo.env and its
// migrations besides db/001_items.sql.
type demoRelease struct {
	env string
	db  map[string]string
}

func (s *story) startDaemon(ctx context.Context) error {
	logPath := filepath.Join(s.dir, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.opts.Exe, "serve", "-c", s.cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: Ctrl-C on the demo must not reach the daemon, which
	// the demo stops itself (or leaves running with --keep).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the daemon: %w", err)
	}
	s.daemon = cmd
	s.client = api.NewClient(filepath.Join(s.dir, "data", "cutover.sock")).App("demo")
	s.say("▶ cutover serve -c %s   (daemon pid %d, log %s)", s.cfg, cmd.Process.Pid, logPath)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := s.client.Status(ctx); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon did not answer within 15s; see %s", logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *story) deploy(ctx context.Context, req deploy.Request) error {
	return s.deployTo(ctx, s.client, req)
}

// deployTo deploys with client c (an app's), printing each step.
func (s *story) deployTo(ctx context.Context, c *api.Client, req deploy.Request) error {
	_, err := c.Deploy(ctx, req, func(ev deploy.Event) {
		switch {
		case ev.Type == "step" && ev.Status == "ok":
			s.say("    ✓ %-13s %-7s %s", ev.Step, ms(ev.DurationMS), ev.Message)
		case ev.Type == "step" && ev.Status == "failed":
			s.say("    ✗ %-13s %-7s %s", ev.Step, ms(ev.DurationMS), ev.Message)
		case ev.Type == "log":
			s.say("      %s:", ev.Message)
			for _, l := range ev.Lines {
				s.say("        | %s", l)
			}
		}
	})
	return err
}

func ms(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func (s *story) pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (s *story) play(ctx context.Context) (load.Report, error) {
	src := func(v string) string { return filepath.Join(s.dir, "src", v) }
	s.say("")
	s.say("1. Deploy v1: copy the release, boot 2 instances, wait for their health checks, switch.")
	if err := s.deploy(ctx, deploy.Request{Source: src("v1")}); err != nil {
		return load.Report{}, fmt.Errorf("deploy v1: %w", err)
	}
	s.say("   And the daemon's second app, blog (Host: %s), on the same port:", blogHost)
	if err := s.deployTo(ctx, s.client.App("blog"), deploy.Request{Source: src("blog1")}); err != nil {
		return load.Report{}, fmt.Errorf("deploy blog1: %w", err)
	}
	blog := load.Start(load.Options{URL: s.url, Host: blogHost, Rate: s.opts.Rate / 4, FreshShare: 0.2, Timeout: 30 * time.Second, MaxDuration: 5 * time.Minute}, "blog")
	defer func() {
		if s.blogRep.Total.Requests == 0 {
			s.blogRep = blog.Stop()
		}
	}()
	s.say("")
	s.say("2. Put it under load: %d requests/s through the proxy at %s", s.opts.Rate, s.url)
	gen := load.Start(load.Options{URL: s.url, Rate: s.opts.Rate, FreshShare: 0.2, Timeout: 30 * time.Second, MaxDuration: 5 * time.Minute}, "v1 serving")
	stopped := false
	stop := func() load.Report {
		stopped = true
		return gen.Stop()
	}
	defer func() {
		if !stopped {
			gen.Stop()
		}
	}()
	if err := s.pause(ctx, s.opts.Pause); err != nil {
		return load.Report{}, err
	}

	s.say("")
	s.say("3. Deploy v2 under load: v2 boots beside v1, traffic switches at once, v1 drains and stops.")
	gen.Mark("deploy v2")
	if err := s.deploy(ctx, deploy.Request{Source: src("v2")}); err != nil {
		return load.Report{}, fmt.Errorf("deploy v2: %w", err)
	}
	gen.Mark("v2 serving")
	if err := s.pause(ctx, s.opts.Pause); err != nil {
		return load.Report{}, err
	}

	s.say("")
	s.say("4. Deploy a broken v3: its instances die at boot. The deploy aborts; v2 never stops serving.")
	gen.Mark("deploy v3 (broken)")
	if err := s.deploy(ctx, deploy.Request{Source: src("v3")}); err == nil {
		return load.Report{}, errors.New("deploy v3: the broken release was accepted")
	} else {
		s.say("    → aborted; v2 kept serving throughout")
	}
	gen.Mark("v2 still serving")
	if err := s.pause(ctx, s.opts.Pause); err != nil {
		return load.Report{}, err
	}

	s.say("")
	s.say("5. Roll back to the previous release (v1), same zero-downtime path, with v1's own config.")
	gen.Mark("rollback to v1")
	if err := s.deploy(ctx, deploy.Request{Rollback: true}); err != nil {
		return load.Report{}, fmt.Errorf("rollback: %w", err)
	}
	gen.Mark("v1 serving")
	if err := s.pause(ctx, s.opts.Pause); err != nil {
		return load.Report{}, err
	}

	s.say("")
	s.say("6. Switch cutover.toml to the canary strategy (read at deploy time: no restart) and ship v4,")
	s.say("   which passes its health checks but fails 30%% of real requests. The proxy gives it 10%% of")
	s.say("   new clients, measures it against v1, and rolls it back by itself.")
	if err := s.editConfig(`strategy = "bluegreen"`, canaryConfig); err != nil {
		return load.Report{}, err
	}
	gen.Mark(canaryPhase)
	err := s.deploy(ctx, deploy.Request{Source: src("v4")})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != api.KindAborted {
		return load.Report{}, fmt.Errorf("canary of v4: want an automatic rollback, got %v", err)
	}
	s.say("    → %s", ae.Msg)
	gen.Mark("v1 after canary")
	if err := s.pause(ctx, s.opts.Pause/2); err != nil {
		return load.Report{}, err
	}
	if err := s.editConfig(`strategy = "canary"`, `strategy = "bluegreen"`); err != nil {
		return load.Report{}, err
	}

	s.say("")
	s.say("7. The database. Every page of v1 reads items.note; v5-drop's own migrations drop it.")
	s.say("   Before anything touches the database, cutover runs them on a copy and diffs the schemas:")
	gen.Mark("deploy v5-drop (refused)")
	err = s.deploy(ctx, deploy.Request{Source: src("v5-drop")})
	if !errors.As(err, &ae) || ae.Kind != api.KindRefused {
		return load.Report{}, fmt.Errorf("deploy of v5-drop: want it refused by the schema preview, got %v", err)
	}
	for _, l := range strings.Split(ae.Msg, "\n") {
		s.say("    │ %s", l)
	}
	s.say("    → refused: nothing migrated, nothing booted; v1 kept serving")
	gen.Mark("v1 still serving")
	if err := s.pause(ctx, s.opts.Pause/2); err != nil {
		return load.Report{}, err
	}

	s.say("")
	s.say("8. The expand/contract way: v5 stops reading the note, and drops it in a contract migration,")
	s.say("   which runs only once v1 is gone (contract_command).")
	gen.Mark("deploy v5 (split)")
	if err := s.deploy(ctx, deploy.Request{Source: src("v5")}); err != nil {
		return load.Report{}, fmt.Errorf("deploy v5: %w", err)
	}
	gen.Mark("v5 serving")
	if err := s.pause(ctx, s.opts.Pause/2); err != nil {
		return load.Report{}, err
	}

	s.say("")
	s.say("9. Some changes cannot be split cheaply: v6 renames items.title, which v5 reads. --hold ships it:")
	s.say("   the proxy holds requests while the migration runs and v6 boots — latency, never an error.")
	gen.Mark("deploy v6 --hold")
	if err := s.deploy(ctx, deploy.Request{Source: src("v6"), Hold: true}); err != nil {
		return load.Report{}, fmt.Errorf("deploy v6 --hold: %w", err)
	}
	gen.Mark("v6 serving")
	if err := s.pause(ctx, s.opts.Pause/2); err != nil {
		return load.Report{}, err
	}

	s.say("")
	s.say("10. All along, blog.localhost was another app of the same daemon on the same port, under")
	s.say("    its own load. Ship v7 of demo once more while both are loaded: blog sees nothing of it.")
	gen.Mark("deploy v7")
	if err := s.deploy(ctx, deploy.Request{Source: src("v7")}); err != nil {
		return load.Report{}, fmt.Errorf("deploy v7: %w", err)
	}
	gen.Mark("v7 serving")
	if err := s.pause(ctx, s.opts.Pause/2); err != nil {
		return load.Report{}, err
	}
	s.blogRep = blog.Stop()
	return stop(), nil
}

// editConfig replaces old with new in the config file.
func (s *story) editConfig(old, new string) error {
	b, err := os.ReadFile(s.cfg)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), old) {
		return fmt.Errorf("%s lacks %q", s.cfg, old)
	}
	return os.WriteFile(s.cfg, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
}

// canaryPhase is the load phase in which failed requests are expected: the
// few answered by the bad canary before the proxy caught it.
const canaryPhase = "canary v4 (30% errors)"

const canaryConfig = `strategy = "canary"
steps = ["10%", "50%"]
step_time = "5s"
min_requests = 20
max_error_rate = 0.05`

// blogHost is the Host of the demo's second app.
const blogHost = "blog.localhost"

// teardown stops the app and the daemon and removes the demo directory.
func (s *story) teardown() {
	if s.daemon != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := s.client.App("").Stop(ctx); err != nil { // stop is the daemon's: every app
			s.daemon.Process.Signal(syscall.SIGTERM) //nolint:errcheck // best effort
		}
		cancel()
		done := make(chan struct{})
		go func() { s.daemon.Wait(); close(done) }() //nolint:errcheck // exit status is irrelevant here
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			s.daemon.Process.Kill() //nolint:errcheck // last resort
			<-done
		}
	}
	if s.opts.Dir == "" {
		os.RemoveAll(s.dir) //nolint:errcheck // a temp dir
	}
}

// shellQuote quotes a path for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
