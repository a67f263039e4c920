package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ReleaseStatus is where a release is in its life.
type ReleaseStatus string

// Release statuses.
const (
	ReleasePrepared ReleaseStatus = "prepared" // on disk, never live
	ReleaseLive     ReleaseStatus = "live"     // serving traffic now
	ReleaseRetired  ReleaseStatus = "retired"  // was live, replaced since
	ReleaseFailed   ReleaseStatus = "failed"   // its deploy aborted before the switch
	ReleasePruned   ReleaseStatus = "pruned"   // directory removed by retention
)

// Release is one release as recorded.
type Release struct {
	ID        string
	CreatedAt time.Time
	Source    string // where it came from: a directory, a tarball, a git ref
	Dir       string // releases/<id>
	Status    ReleaseStatus
	// ConfigJSON is the app configuration this release was deployed with;
	// a rollback runs the release with it.
	ConfigJSON string
	// MetaJSON holds the release's metadata (source details, who, digests).
	MetaJSON  string
	LiveSince time.Time // last time it became live; zero if never
	RetiredAt time.Time // last time it stopped being live; zero if live or never
}

// PutRelease inserts or replaces a release.
func (s *Store) PutRelease(ctx context.Context, r Release) error {
	_, err := s.exec(ctx, `INSERT INTO releases
		(id, created_at, source, dir, status, config_json, meta_json, live_since, retired_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET source = excluded.source, dir = excluded.dir,
			status = excluded.status, config_json = excluded.config_json,
			meta_json = excluded.meta_json, live_since = excluded.live_since,
			retired_at = excluded.retired_at`,
		r.ID, unixMilli(r.CreatedAt), r.Source, r.Dir, string(r.Status), r.ConfigJSON, r.MetaJSON,
		unixMilli(r.LiveSince), unixMilli(r.RetiredAt))
	if err != nil {
		return fmt.Errorf("record release %s: %w", r.ID, err)
	}
	return nil
}

// SetReleaseStatus changes only the status of a release.
func (s *Store) SetReleaseStatus(ctx context.Context, id string, st ReleaseStatus) error {
	res, err := s.exec(ctx, `UPDATE releases SET status = ? WHERE id = ?`, string(st), id)
	if err != nil {
		return fmt.Errorf("set release %s %s: %w", id, st, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set release %s %s: %w", id, st, ErrNotFound)
	}
	return nil
}

// SetReleaseMeta replaces only the metadata (MetaJSON) of a release.
func (s *Store) SetReleaseMeta(ctx context.Context, id, metaJSON string) error {
	res, err := s.exec(ctx, `UPDATE releases SET meta_json = ? WHERE id = ?`, metaJSON, id)
	if err != nil {
		return fmt.Errorf("record metadata of release %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record metadata of release %s: %w", id, ErrNotFound)
	}
	return nil
}

const releaseCols = `id, created_at, source, dir, status, config_json, meta_json, live_since, retired_at`

func scanRelease(sc interface{ Scan(...any) error }) (Release, error) {
	var r Release
	var created, since, retired int64
	var st string
	if err := sc.Scan(&r.ID, &created, &r.Source, &r.Dir, &st, &r.ConfigJSON, &r.MetaJSON, &since, &retired); err != nil {
		return r, err
	}
	r.CreatedAt, r.LiveSince, r.RetiredAt = fromMilli(created), fromMilli(since), fromMilli(retired)
	r.Status = ReleaseStatus(st)
	return r, nil
}

// Release returns one release, or ErrNotFound.
func (s *Store) Release(ctx context.Context, id string) (Release, error) {
	r, err := scanRelease(s.queryRow(ctx, `SELECT `+releaseCols+` FROM releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("release %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read release %s: %w", id, err)
	}
	return r, nil
}

// Releases returns every recorded release, oldest first.
func (s *Store) Releases(ctx context.Context) ([]Release, error) {
	rows, err := s.query(ctx, `SELECT `+releaseCols+` FROM releases ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, fmt.Errorf("list releases: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// LastRetired returns the release retired most recently: the one a
// rollback goes back to and retention keeps. ErrNotFound when no release
// was ever retired. Among releases retired at the same millisecond, the
// oldest wins. It reads one row, however long the history.
func (s *Store) LastRetired(ctx context.Context) (Release, error) {
	r, err := scanRelease(s.queryRow(ctx, `SELECT `+releaseCols+` FROM releases
		WHERE status = 'retired' ORDER BY retired_at DESC, created_at, id LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("last retired release: %w", ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read last retired release: %w", err)
	}
	return r, nil
}

// Active returns the id of the live release, or "" when none is.
func (s *Store) Active(ctx context.Context) (string, error) {
	return s.Get(ctx, "active_release")
}

// SetActive makes id the live release in one transaction: the previous live
// release becomes retired (with its retirement time), id becomes live.
func (s *Store) SetActive(ctx context.Context, id string, at time.Time) error {
	// Prepared before the transaction takes the one connection.
	var sts [3]*sql.Stmt
	for i, q := range []string{
		`UPDATE releases SET status = 'retired', retired_at = ? WHERE status = 'live' AND id <> ?`,
		`UPDATE releases SET status = 'live', live_since = ?, retired_at = 0 WHERE id = ?`,
		`INSERT INTO kv(key, value) VALUES('active_release', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
	} {
		st, err := s.prepared(ctx, q)
		if err != nil {
			return fmt.Errorf("activate %s: %w", id, err)
		}
		sts[i] = st
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("activate %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	ms := unixMilli(at)
	if _, err := tx.StmtContext(ctx, sts[0]).ExecContext(ctx, ms, id); err != nil {
		return fmt.Errorf("activate %s: retire previous: %w", id, err)
	}
	res, err := tx.StmtContext(ctx, sts[1]).ExecContext(ctx, ms, id)
	if err != nil {
		return fmt.Errorf("activate %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("activate %s: %w", id, ErrNotFound)
	}
	if _, err := tx.StmtContext(ctx, sts[2]).ExecContext(ctx, id); err != nil {
		return fmt.Errorf("activate %s: %w", id, err)
	}
	return tx.Commit()
}
