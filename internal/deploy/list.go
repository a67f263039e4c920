package deploy

// What the admin API shows: the engine answers it, so that the API opens
// neither the state database nor the data directory itself.

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/cutover/cutover/internal/state"
)

// ReleaseInfo is one release as listed by `cutover releases`.
type ReleaseInfo struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	LiveSince time.Time `json:"live_since,omitzero"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
	OnDisk    bool      `json:"on_disk"`
	Current   bool      `json:"current"`
	// Meta is what was recorded about the release: source, ref, commit,
	// who, config digest, and the environment as keys with digests (never
	// values).
	Meta *ReleaseMeta `json:"meta,omitempty"`
}

// ListReleases returns every recorded release, as the state database
// orders them, with whether its directory is still on disk and whether
// `current` points at it.
func (e *Engine) ListReleases(ctx context.Context) ([]ReleaseInfo, error) {
	rels, err := e.store.Releases(ctx)
	if err != nil {
		return nil, err
	}
	cur, _ := e.rel.Current() //nolint:errcheck // no current link yet is fine
	out := make([]ReleaseInfo, 0, len(rels))
	for _, rel := range rels {
		_, statErr := os.Stat(rel.Dir)
		item := ReleaseInfo{ID: rel.ID, Status: string(rel.Status), Source: rel.Source, CreatedAt: rel.CreatedAt,
			LiveSince: rel.LiveSince, RetiredAt: rel.RetiredAt, OnDisk: statErr == nil, Current: rel.ID == cur}
		if rel.MetaJSON != "" {
			var m ReleaseMeta
			if err := json.Unmarshal([]byte(rel.MetaJSON), &m); err == nil {
				item.Meta = &m
			}
		}
		out = append(out, item)
	}
	return out, nil
}

// Deploys returns the latest limit deploys (0: all of them), newest first.
func (e *Engine) Deploys(ctx context.Context, limit int) ([]state.Deploy, error) {
	return e.store.Deploys(ctx, limit, "")
}

// Live returns the release recorded as live, "" before the first deploy.
func (e *Engine) Live(ctx context.Context) (string, error) { return e.store.Active(ctx) }

// LogFiles returns the log files of release's instances, or of its
// instance instance when that is set, sorted; the error says there are
// none and why.
func (e *Engine) LogFiles(release, instance string) ([]string, error) {
	return e.fleet.LogFiles(release, instance)
}
