package migrate

import (
	"context"
	"fmt"
)

// RepairOptions choose what Repair does.
type RepairOptions struct {
	// ID, when not nil, repairs only this migration; it may then also be a
	// failed or partial one. When nil, Repair accepts the new checksum of
	// every applied migration whose file changed, and nothing else.
	ID *Version
	// MarkApplied records a failed or partial migration as applied instead
	// of forgetting it: the operator finished its remaining statements by
	// hand. Only with ID.
	MarkApplied bool
}

// Repaired says what Repair changed for one migration, in words for the
// operator.
type Repaired struct {
	ID   Version
	Name string
	Did  string
}

// Repair deliberately fixes the version table after the operator checked
// the database, under the migration lock. It never runs migration SQL.
//
//   - An applied migration whose file changed gets the file's checksum
//     (a repeatable one only when named by ID: otherwise its change is
//     what makes the next up run it again).
//   - A failed or partial migration (only when named by ID) is forgotten,
//     so the next up runs it from its first statement, or with MarkApplied
//     recorded as applied.
func (r *Runner) Repair(ctx context.Context, set *Set, opts RepairOptions) ([]Repaired, error) {
	if opts.MarkApplied && opts.ID == nil {
		return nil, fmt.Errorf("repair: marking as applied needs the id of one migration")
	}
	unlock, err := r.lock(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := r.Applied(ctx)
	if err != nil {
		return nil, err
	}
	var out []Repaired
	for _, a := range rows {
		if opts.ID != nil && a.ID.Compare(*opts.ID) != 0 {
			continue
		}
		m := set.Find(a.ID)
		switch {
		case a.Status == StatusApplied:
			if m == nil || m.Checksum == a.Checksum {
				continue
			}
			if m.Repeatable() && opts.ID == nil {
				// A changed repeatable migration is pending, not an
				// accident: the next up runs it again.
				continue
			}
			a.Checksum = m.Checksum
			if err := r.writeRow(ctx, r.conn, a); err != nil {
				return out, err
			}
			out = append(out, Repaired{ID: a.ID, Name: a.Name, Did: fmt.Sprintf(
				"accepted the new checksum of %s; no SQL ran, so the database must already match the edited file", m.Up.Path)})
		case opts.ID == nil:
			// Failed and partial rows are only repaired when named.
		case opts.MarkApplied:
			if m == nil {
				return out, fmt.Errorf("repair: migration %s has no file in %s to take the checksum from", a.ID, set.Dir)
			}
			was := describeRow(a)
			a.Status, a.NextStatement, a.Error, a.resumeChecksum = StatusApplied, 0, "", ""
			a.Checksum, a.AppliedAt, a.Release = m.Checksum, r.now(), r.opts.Release
			if err := r.writeRow(ctx, r.conn, a); err != nil {
				return out, err
			}
			out = append(out, Repaired{ID: a.ID, Name: a.Name, Did: fmt.Sprintf(
				"was %s; now recorded as applied without running anything: the remaining statements must have been done by hand", was)})
		default:
			was := describeRow(a)
			if err := r.deleteRow(ctx, r.conn, a.ID); err != nil {
				return out, err
			}
			did := fmt.Sprintf("was %s; forgot it, so the next `cutover migrate up` runs it from its first statement", was)
			if a.Status == StatusPartial && a.NextStatement > 1 {
				did += fmt.Sprintf(" (statements 1 to %d had run: they run again, so undo them first unless they are idempotent)", a.NextStatement-1)
			}
			out = append(out, Repaired{ID: a.ID, Name: a.Name, Did: did})
		}
	}
	if opts.ID != nil && len(out) == 0 {
		return nil, fmt.Errorf("repair: nothing to repair for migration %s (it is not in the version table, or it is applied and its file is unchanged)", *opts.ID)
	}
	return out, nil
}

func describeRow(a Applied) string {
	switch a.Status {
	case StatusPartial:
		return fmt.Sprintf("partial, stopped at statement %d", a.NextStatement)
	case StatusFailed:
		return "failed and rolled back"
	}
	return string(a.Status)
}
