package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DeployState is the outcome of a deploy.
type DeployState string

// Deploy states.
const (
	DeployRunning     DeployState = "running"
	DeploySucceeded   DeployState = "succeeded"
	DeployFailed      DeployState = "failed"
	DeployInterrupted DeployState = "interrupted" // the daemon died during it
	DeployRolledBack  DeployState = "rolled back" // aborted after traffic moved (canary, watch, operator)
	DeployAborted     DeployState = "aborted"     // aborted before traffic moved (preview, operator)
)

// Deploy is one deploy or rollback in the history.
type Deploy struct {
	ID          int64
	Kind        string // "deploy" or "rollback"
	Release     string
	FromRelease string
	StartedAt   time.Time
	FinishedAt  time.Time
	State       DeployState
	Error       string
	Steps       []Step
}

// Step is one recorded step of a deploy.
type Step struct {
	Name       string
	Status     string // "ok", "failed", "skipped"
	StartedAt  time.Time
	FinishedAt time.Time
	Detail     string
}

// BeginDeploy records a new running deploy and returns its id.
func (s *Store) BeginDeploy(ctx context.Context, d Deploy) (int64, error) {
	res, err := s.exec(ctx, `INSERT INTO deploys (kind, release, from_release, started_at, state)
		VALUES (?, ?, ?, ?, 'running')`, d.Kind, d.Release, d.FromRelease, unixMilli(d.StartedAt))
	if err != nil {
		return 0, fmt.Errorf("record deploy: %w", err)
	}
	return res.LastInsertId()
}

// SetDeployRelease sets the release of a deploy once it is known.
func (s *Store) SetDeployRelease(ctx context.Context, id int64, release string) error {
	if _, err := s.exec(ctx, `UPDATE deploys SET release = ? WHERE id = ?`, release, id); err != nil {
		return fmt.Errorf("record deploy %d release: %w", id, err)
	}
	return nil
}

// AddStep appends a finished step to a deploy.
func (s *Store) AddStep(ctx context.Context, deployID int64, st Step) error {
	_, err := s.exec(ctx, `INSERT INTO deploy_steps (deploy_id, seq, step, status, started_at, finished_at, detail)
		VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deploy_steps WHERE deploy_id = ?), ?, ?, ?, ?, ?)`,
		deployID, deployID, st.Name, st.Status, unixMilli(st.StartedAt), unixMilli(st.FinishedAt), st.Detail)
	if err != nil {
		return fmt.Errorf("record deploy %d step %s: %w", deployID, st.Name, err)
	}
	return nil
}

// FinishDeploy records the outcome of a deploy.
func (s *Store) FinishDeploy(ctx context.Context, id int64, st DeployState, errText string, at time.Time) error {
	if _, err := s.exec(ctx, `UPDATE deploys SET state = ?, error = ?, finished_at = ? WHERE id = ?`,
		string(st), errText, unixMilli(at), id); err != nil {
		return fmt.Errorf("record deploy %d outcome: %w", id, err)
	}
	return nil
}

// InterruptRunning marks every deploy still recorded as running as
// interrupted; the daemon calls it at start, when no deploy can be running.
func (s *Store) InterruptRunning(ctx context.Context, at time.Time) ([]Deploy, error) {
	ds, err := s.Deploys(ctx, 0, DeployRunning)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if err := s.FinishDeploy(ctx, d.ID, DeployInterrupted, "the daemon stopped during this deploy", at); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// Deploys returns the most recent deploys first (limit 0 = all), optionally
// only those in one state, with their steps.
func (s *Store) Deploys(ctx context.Context, limit int, only DeployState) ([]Deploy, error) {
	q := `SELECT id, kind, release, from_release, started_at, finished_at, state, error FROM deploys`
	var args []any
	if only != "" {
		q += ` WHERE state = ?`
		args = append(args, string(only))
	}
	q += ` ORDER BY id DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	var out []Deploy
	for rows.Next() {
		var d Deploy
		var st string
		var started, finished int64
		if err := rows.Scan(&d.ID, &d.Kind, &d.Release, &d.FromRelease, &started, &finished, &st, &d.Error); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list deploys: %w", err)
		}
		d.StartedAt, d.FinishedAt, d.State = fromMilli(started), fromMilli(finished), DeployState(st)
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	for i := range out {
		if out[i].Steps, err = s.steps(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Deploy returns one deploy with its steps, or ErrNotFound.
func (s *Store) Deploy(ctx context.Context, id int64) (Deploy, error) {
	var d Deploy
	var st string
	var started, finished int64
	err := s.queryRow(ctx, `SELECT id, kind, release, from_release, started_at, finished_at, state, error
		FROM deploys WHERE id = ?`, id).Scan(&d.ID, &d.Kind, &d.Release, &d.FromRelease, &started, &finished, &st, &d.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("deploy %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("read deploy %d: %w", id, err)
	}
	d.StartedAt, d.FinishedAt, d.State = fromMilli(started), fromMilli(finished), DeployState(st)
	d.Steps, err = s.steps(ctx, id)
	return d, err
}

func (s *Store) steps(ctx context.Context, id int64) ([]Step, error) {
	rows, err := s.query(ctx, `SELECT step, status, started_at, finished_at, detail
		FROM deploy_steps WHERE deploy_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("read deploy %d steps: %w", id, err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var st Step
		var a, b int64
		if err := rows.Scan(&st.Name, &st.Status, &a, &b, &st.Detail); err != nil {
			return nil, fmt.Errorf("read deploy %d steps: %w", id, err)
		}
		st.StartedAt, st.FinishedAt = fromMilli(a), fromMilli(b)
		out = append(out, st)
	}
	return out, rows.Err()
}
