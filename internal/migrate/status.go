package migrate

import (
	"context"
	"slices"
)

// State is the state of one migration as Status reports it.
type State string

// The states Status reports.
const (
	StatePending State = "pending" // not applied (or a repeatable one changed since it ran)
	StateApplied State = "applied" // applied, file unchanged
	StateChanged State = "changed" // applied, but the file changed since
	StateFailed  State = "failed"  // last attempt failed and was rolled back
	StatePartial State = "partial" // a no-transaction migration stopped midway
	StateMissing State = "no file" // applied, but no file in the directory
)

// MigrationStatus is one line of Status: a migration file, a version table
// row, or both.
type MigrationStatus struct {
	ID    Version
	Name  string
	Phase Phase
	State State
	// Migration is nil when State is StateMissing.
	Migration *Migration
	// Applied is nil when State is StatePending.
	Applied *Applied
}

// Status merges the files of set with the version table, by id.
func (r *Runner) Status(ctx context.Context, set *Set) ([]MigrationStatus, error) {
	rows, err := r.Applied(ctx)
	if err != nil {
		return nil, err
	}
	return mergeStatus(set, rows), nil
}

func mergeStatus(set *Set, rows []Applied) []MigrationStatus {
	byID := map[Version]*MigrationStatus{}
	var out []*MigrationStatus
	for _, m := range set.Migrations {
		s := &MigrationStatus{ID: m.ID, Name: m.Name, Phase: m.Phase, State: StatePending, Migration: m}
		byID[m.ID] = s
		out = append(out, s)
	}
	for i := range rows {
		a := &rows[i]
		s := byID[a.ID]
		if s == nil {
			s = &MigrationStatus{ID: a.ID, Name: a.Name, Phase: a.Phase, State: StateMissing}
			out = append(out, s)
		}
		s.Applied = a
		if s.Migration == nil {
			continue
		}
		switch a.Status {
		case StatusFailed:
			s.State = StateFailed
		case StatusPartial:
			s.State = StatePartial
		default:
			s.State = StateApplied
			switch {
			case a.Checksum == s.Migration.Checksum:
			case s.Migration.Repeatable():
				// Changed since it last ran: the next up runs it again.
				s.State = StatePending
			default:
				s.State = StateChanged
			}
		}
	}
	slices.SortFunc(out, func(a, b *MigrationStatus) int { return a.ID.Compare(b.ID) })
	res := make([]MigrationStatus, len(out))
	for i, s := range out {
		res[i] = *s
	}
	return res
}
