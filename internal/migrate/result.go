package migrate

import (
	"fmt"
	"strings"
	"time"
)

// Outcome is one migration that Up or Down completed.
type Outcome struct {
	Migration *Migration
	Duration  time.Duration
	// ResumedAt is the 1-based statement a resumed no-transaction migration
	// started from; 0 when it ran from the start.
	ResumedAt int
}

// Result is what Up or Down did, in order.
type Result struct {
	Done []Outcome
}

// ChecksumError reports an applied migration whose file changed since.
type ChecksumError struct {
	ID       Version
	Path     string
	Recorded string
	Current  string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s was changed after it was applied (checksum %.12s… recorded, %.12s… now): restore the file, or if the edit is deliberate and the database already matches it, run `cutover migrate repair %s`", e.Path, e.Recorded, e.Current, e.ID)
}

// PhaseOrderError reports an expand migration ordered after a pending
// contract one: running it now would skip the contract migration, and
// waiting would hold it until the old release is gone.
type PhaseOrderError struct {
	Expand, Contract *Migration
}

func (e *PhaseOrderError) Error() string {
	return fmt.Sprintf("expand migration %s is ordered after pending contract migration %s: contract migrations run only after the old release is stopped, so %s would have to wait too. Apply %s first (`cutover migrate contract` once the old release is gone), or give %s an id below %s, or make it contract too",
		e.Expand.Up.Path, e.Contract.Up.Path, e.Expand.Up.Path, e.Contract.Up.Path, e.Expand.Up.Path, e.Contract.ID)
}

// NotAppliedError reports a contract run while expand migrations before it
// are still pending.
type NotAppliedError struct {
	Expand *Migration
}

func (e *NotAppliedError) Error() string {
	return fmt.Sprintf("expand migration %s is not applied yet: run `cutover migrate up` (or deploy) before the contract phase", e.Expand.Up.Path)
}

// StatementError reports a statement that failed, where it is, and what
// state the migration was left in.
type StatementError struct {
	Migration *Migration
	Down      bool
	Path      string
	// Line is the 1-based line in Path where the statement starts.
	Line int
	// Index is the 1-based index of the statement, of Total.
	Index, Total int
	SQL          string
	// NoTransaction is set when statements before Index stay applied.
	NoTransaction bool
	Err           error
}

func (e *StatementError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: statement %d of %d failed: %v\n    %s\n", e.Path, e.Line, e.Index, e.Total, e.Err, firstLines(e.SQL, 3))
	switch {
	case !e.NoTransaction:
		b.WriteString("The transaction was rolled back: nothing of this migration was applied. Fix the file or the database and run again.")
	case e.Down:
		fmt.Fprintf(&b, "Statements 1 to %d of the down script ran and stay applied; the migration is still recorded as applied. Fix the cause, and undo what remains by hand or make the down script idempotent, then run again.", e.Index-1)
	default:
		if e.Index > 1 {
			fmt.Fprintf(&b, "Statements 1 to %d ran and are recorded; ", e.Index-1)
		} else {
			b.WriteString("No statement of it ran; ")
		}
		fmt.Fprintf(&b, "the migration is recorded as partial. Fix the cause (the statement in the file, or the database) and run `cutover migrate up` again: it resumes at statement %d. To start over instead, undo what ran and run `cutover migrate repair %s`.", e.Index, e.Migration.ID)
		if strings.Contains(strings.ToUpper(e.SQL), "CONCURRENTLY") {
			b.WriteString(" A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: DROP INDEX CONCURRENTLY it before running again.")
		}
	}
	return b.String()
}

func (e *StatementError) Unwrap() error { return e.Err }

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n    ")
}
