package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/envfile"
	"github.com/cutover/cutover/internal/instance"
	"github.com/cutover/cutover/internal/release"
	"github.com/cutover/cutover/internal/state"
)

// ReleaseMeta is what cutover records about a release, in state and in
// <release>/.cutover-release.json. Secret values never appear in it: the
// environment is listed as keys with digests. Every digest is keyed
// (HMAC-SHA256 under the data directory's digest key, see
// datadir.DigestKey): a bare hash of a secret could be tested against
// guesses by whoever reads it.
type ReleaseMeta struct {
	release.Meta
	// ConfigDigest is the keyed digest of the sha256 of cutover.toml as it
	// was at deploy time ("hmac-sha256:…").
	ConfigDigest string `json:"config_digest,omitempty"`
	// Env maps each variable of the environment snapshot to a keyed digest
	// of its value ("hmac-sha256:…", 12 hex digits), so a changed secret
	// shows without being shown.
	Env map[string]string `json:"env,omitempty"`
	// EnvDigest is one keyed digest over the whole snapshot.
	EnvDigest string `json:"env_digest,omitempty"`
	// Shared lists the shared paths linked into the release.
	Shared []string `json:"shared,omitempty"`
}

// loadConfig returns the configuration this run deploys with: the file as
// it was when the run started (Engine.Start read it), or, when it did not
// load then, as it is now, to report why it does not.
func (r *Run) loadConfig() (*config.Config, error) {
	if r.snap != nil {
		return r.snap, nil
	}
	return r.e.loadConfig()
}

// config is the configuration this run deploys with once prepare has set
// it, the daemon's before.
func (r *Run) config() *config.Config {
	if r.cfg != nil {
		return r.cfg
	}
	return r.e.Config()
}

// prepare makes the release this run deploys, and sets r.cfg and r.app:
// for a deploy, the config file as it is now and a new release directory;
// for a rollback, the release's recorded app configuration.
func (r *Run) prepare(ctx context.Context) (string, error) {
	e, req := r.e, r.req
	var newID string
	if req.Rollback {
		var target state.Release
		err := r.step(StepPrepare, func() (string, error) {
			// The release brings its recorded [app]; the rest ([proxy],
			// [deploy]…) is read from the file as it is now. A file that
			// does not load must not stand in the way of going back: then
			// the daemon's running settings are used, and the detail says so.
			cfg, cfgErr := r.loadConfig()
			if cfgErr != nil {
				cfg = e.Config()
			}
			t, app, err := e.rollbackTarget(ctx, req.Release, r.from)
			if err != nil {
				return "", err
			}
			target, newID, r.app, r.cfg = t, t.ID, app, cfg
			detail := fmt.Sprintf("rolling back to %s with the configuration and environment it ran with", newID)
			if cfgErr != nil {
				var ce *config.Error
				if errors.As(cfgErr, &ce) {
					cfgErr = ce
				}
				detail += fmt.Sprintf("; the config file does not load (%v), so the rest of the settings are the daemon's running ones", cfgErr)
			}
			return detail, nil
		})
		if err != nil {
			return "", err
		}
		return newID, r.step(StepCheck, func() (string, error) {
			contract, err := e.contractGuard(ctx, r.cfg.Database, target, req.Force)
			if err != nil {
				return "", err
			}
			sch, err := e.schemaGuard(ctx, r.cfg.Database, target, req.Force)
			if err != nil {
				return "", err
			}
			return contract + "; " + sch, nil
		})
	}
	err := r.step(StepPrepare, func() (string, error) {
		cfg, err := r.loadConfig()
		if err != nil {
			return "", err
		}
		app, envSnap, err := snapshotEnv(cfg.App)
		if err != nil {
			return "", err
		}
		r.cfg, r.app = cfg, app

		// The release's metadata file is written once, in the release
		// directory before it is renamed into place, with all it records.
		var rm ReleaseMeta
		record := func(meta release.Meta) any {
			if req.User != "" {
				meta.CreatedBy = req.User
			}
			rm = ReleaseMeta{Meta: meta, ConfigDigest: fileDigest(e.digestKey, cfg.Path), Env: envfile.Redact(e.digestKey, envSnap),
				EnvDigest: envfile.Digest(e.digestKey, envSnap), Shared: cfg.Release.Shared}
			return rm
		}
		switch {
		case req.Git != "":
			if cfg.Release.Repo == "" {
				return "", &config.Error{File: cfg.Path, Field: "release.repo",
					Msg: "deploy --git needs the repository: set repo = \"/srv/app.git\" (or a URL) in [release]"}
			}
			// The operator's abort stops the checkout, test and build at
			// once: PrepareGit removes what it had made.
			gctx, stop := r.abortable(ctx)
			newID, _, err = e.rel.PrepareGit(gctx, release.GitOptions{
				Repo: cfg.Release.Repo, Ref: req.Git, Test: cfg.Release.Test, Build: cfg.Release.Build,
				Env: envList(app.Env),
				Output: func(stream, line string) {
					r.event(Event{Type: "output", Step: StepPrepare, Instance: stream, Lines: []string{line}})
				},
				Record:  record,
				Started: e.trackCommand,
			})
			stop()
			if err != nil && r.aborted() {
				return "", fmt.Errorf("%w during prepare: the checkout, test and build of %s were stopped; nothing was recorded", errOperatorAbort, req.Git)
			}
		default:
			// At the daemon's priority. Copying on a daemon thread lowered
			// to boot_nice was tried and froze the proxy for 650 ms on a
			// loaded machine: the Go scheduler's locks and Ps are shared
			// by all threads, so a starved low-priority thread holding one
			// stalls every goroutine. Lower priority needs a process.
			newID, _, err = e.rel.PrepareMeta(req.Source, record)
		}
		if err != nil {
			return "", err
		}
		meta := rm.Meta
		// What a daemon that lost state.db needs to run this release
		// again as deployed (see rebuild.go); kept outside the release
		// directory, which the app may serve.
		if err := e.rel.WriteSnapshot(newID, app); err != nil {
			return "", err
		}
		if err := e.rel.LinkShared(newID, cfg.SharedDir(), cfg.Release.Shared); err != nil {
			return "", fmt.Errorf("link shared paths into %s: %w", newID, err)
		}
		metaJSON, err := json.Marshal(rm)
		if err != nil {
			return "", err
		}
		rec := state.Release{ID: newID, CreatedAt: time.Now(), Source: describeSource(meta), Dir: e.rel.Dir(newID),
			Status: state.ReleasePrepared, ConfigJSON: appConfigJSON(app), MetaJSON: string(metaJSON)}
		if err := e.store.PutRelease(ctx, rec); err != nil {
			return "", err
		}
		return fmt.Sprintf("release %s from %s", newID, rec.Source), nil
	})
	return newID, err
}

// snapshotEnv returns app with its environment completed by env_file, and
// that environment: what the release will run with, now and on rollback.
func snapshotEnv(app config.App) (config.App, map[string]string, error) {
	env := maps.Clone(app.Env)
	if env == nil {
		env = map[string]string{}
	}
	if app.EnvFile != "" {
		f, err := os.Open(app.EnvFile)
		if err != nil {
			return app, nil, fmt.Errorf("app.env_file: %w", err)
		}
		defer f.Close()
		fromFile, err := envfile.Parse(f, app.EnvFile)
		if err != nil {
			return app, nil, err
		}
		for k, v := range fromFile {
			if k == "PORT" {
				return app, nil, fmt.Errorf("%s: PORT is set by cutover for each instance and cannot be set here", app.EnvFile)
			}
			env[k] = v
		}
	}
	app.Env = env
	app.EnvFile = "" // the snapshot is complete: a rollback must not re-read it
	return app, env, nil
}

func envList(env map[string]string) []string {
	keys := slices.Sorted(maps.Keys(env))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// fileDigest is the keyed digest of the sha256 of the file at path, or ""
// if it cannot be read. The sha256 in between lets a digest recorded by an
// older cutover, a bare sha256, be converted (see rekeyDigests).
func fileDigest(key []byte, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return envfile.KeyedDigest(key, sum[:])
}

func describeSource(m release.Meta) string {
	switch m.Source {
	case release.SourceGit:
		short := m.Commit
		if len(short) > 12 {
			short = short[:12]
		}
		return fmt.Sprintf("git %s %s (%s)", m.Repo, m.Ref, short)
	default:
		return m.Path
	}
}

// hookEnv is the environment of a hook: the release's own, plus where it is.
func (r *Run) hookEnv(releaseID string) []string {
	env := instance.Env(r.app, releaseID)
	return append(env, "CUTOVER_RELEASE_DIR="+r.e.rel.Dir(releaseID), "CUTOVER_PREVIOUS_RELEASE="+r.from)
}
