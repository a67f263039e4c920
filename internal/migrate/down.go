package migrate

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// DownTarget says how far Down goes back.
type DownTarget struct {
	// Steps is how many applied migrations to undo, newest first. Used
	// when To is nil; 0 means 1.
	Steps int
	// To, when not nil, undoes every applied migration with an id above
	// *To ("0" undoes everything).
	To *Version
}

// PlanDown returns the applied migrations Down would undo, newest first.
// It fails when one of them cannot be undone: no file, no down script, a
// changed file, or a failed or partial row.
func (r *Runner) PlanDown(ctx context.Context, set *Set, target DownTarget) ([]*Migration, error) {
	rows, err := r.Applied(ctx)
	if err != nil {
		return nil, err
	}
	return planDown(set, rows, target)
}

func planDown(set *Set, rows []Applied, target DownTarget) ([]*Migration, error) {
	slices.Reverse(rows)
	n := target.Steps
	if n <= 0 {
		n = 1
	}
	var out []*Migration
	for _, a := range rows {
		if target.To != nil && a.ID.Compare(*target.To) <= 0 {
			break
		}
		if target.To == nil && len(out) == n {
			break
		}
		if a.Status != StatusApplied {
			return nil, fmt.Errorf("migration %s %s is %s (statement %d: %s): finish it with `cutover migrate up` or clear it with `cutover migrate repair %s` before going down", a.ID, a.Name, a.Status, a.NextStatement, a.Error, a.ID)
		}
		m := set.Find(a.ID)
		if m == nil {
			return nil, fmt.Errorf("applied migration %s %s has no file in %s: cannot undo it from here (was the directory of a newer release?)", a.ID, a.Name, set.Dir)
		}
		if m.Checksum != a.Checksum {
			return nil, &ChecksumError{ID: m.ID, Path: m.Up.Path, Recorded: a.Checksum, Current: m.Checksum}
		}
		if m.Down == nil && missingDownFile(m) != "" {
			return nil, fmt.Errorf("migration %s %s cannot be undone: it has no down file %s (the directory is up-only). Write that file with the SQL that undoes %s and run down again, or undo it by hand and delete its row (id %s) from the version table", m.ID, m.Name, missingDownFile(m), m.Up.Path, m.ID)
		}
		if m.Down == nil || strings.TrimSpace(stripComments(m.Down.SQL)) == "" {
			return nil, fmt.Errorf("%s has no down script: migration %s cannot be undone; write one, or undo it by hand and delete its row from the version table", m.Up.Path, m.ID)
		}
		out = append(out, m)
	}
	return out, nil
}

// Down undoes applied migrations, newest first, under the migration lock:
// each down script runs in a transaction with the deletion of its version
// row, unless it is no-transaction, in which case the row is deleted after
// its last statement.
func (r *Runner) Down(ctx context.Context, set *Set, target DownTarget, progress func(Event)) (Result, error) {
	var res Result
	emit := func(e Event) {
		if progress != nil {
			progress(e)
		}
	}
	unlock, err := r.lock(ctx, progress)
	if err != nil {
		return res, err
	}
	defer unlock()
	todo, err := r.PlanDown(ctx, set, target)
	if err != nil {
		return res, err
	}
	for _, m := range todo {
		emit(Event{Kind: EventStart, Migration: m, Down: true, Statement: 1})
		start := r.now()
		if err := r.undo(ctx, m, emit); err != nil {
			emit(Event{Kind: EventFailed, Migration: m, Down: true, Err: err})
			return res, fmt.Errorf("undo migration %s: %w", m, err)
		}
		d := r.now().Sub(start)
		res.Done = append(res.Done, Outcome{Migration: m, Duration: d})
		emit(Event{Kind: EventDone, Migration: m, Down: true, Duration: d})
		r.log.Info("migration undone", "id", m.ID, "name", m.Name, "duration", d)
	}
	return res, nil
}

func (r *Runner) undo(ctx context.Context, m *Migration, emit func(Event)) error {
	stmts, err := r.statements(*m.Down)
	if err != nil {
		return err
	}
	if m.Down.NoTransaction {
		for i := range stmts {
			if err := r.execStatement(ctx, m, *m.Down, stmts, i, true); err != nil {
				return err
			}
			emit(Event{Kind: EventStatement, Migration: m, Down: true, Statement: i + 1})
		}
		return r.deleteRow(ctx, r.conn, m.ID)
	}
	for attempt := 0; ; attempt++ {
		err := r.inTx(ctx, func() error {
			if err := r.runStatements(ctx, m, *m.Down, stmts, 0, true); err != nil {
				return err
			}
			return r.deleteRow(ctx, r.conn, m.ID)
		})
		wait, retry := r.retryWait(err, attempt)
		if !retry {
			return err
		}
		emit(Event{Kind: EventRetry, Migration: m, Down: true, Attempt: attempt + 1, Wait: wait, Err: err})
		if err := r.sleep(ctx, wait); err != nil {
			return err
		}
	}
}
