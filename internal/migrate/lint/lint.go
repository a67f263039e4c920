package lint

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cutover/cutover/internal/migrate/sqlsplit"
)

// Phases of a migration.
const (
	// PhaseExpand migrations run while the old version still serves.
	PhaseExpand = "expand"
	// PhaseContract migrations run after the old version is gone.
	PhaseContract = "contract"
)

// Dialects lint understands.
const (
	// DialectPostgres is PostgreSQL, parsed by the real Postgres parser.
	DialectPostgres = "postgres"
	// DialectSQLite is SQLite.
	DialectSQLite = "sqlite"
)

// File is one migration to check.
type File struct {
	// Path names the file in findings.
	Path string
	// SQL is the migration's SQL: the whole file, or the part of it that
	// runs in the phase being checked (such as a goose Up section).
	SQL string
	// FirstLine is the line of Path on which SQL starts; 0 means 1.
	FirstLine int
	// Phase is PhaseExpand or PhaseContract; "" or anything else is
	// checked as PhaseExpand, the strictest.
	Phase string
	// Transactional reports that the runner wraps the whole file in one
	// transaction, as it does unless the file says -- cutover:no-transaction.
	// The zero value means the statements run one by one, so callers must
	// set it for ordinary migrations.
	Transactional bool
}

// Options configure Check.
type Options struct {
	// Dialect is DialectPostgres or DialectSQLite; "" means DialectPostgres.
	Dialect string
}

// Finding is one problem in one statement.
type Finding struct {
	// Path is the file's Path.
	Path string
	// Line is the line of Path on which the statement starts.
	Line int
	// Rule is the ID of the rule that found the problem.
	Rule string
	// Statement is the statement's SQL, without comments; "" for a file
	// that does not parse.
	Statement string
	// Why says what goes wrong.
	Why string
	// Fix says how to make the change safely.
	Fix string
	// Severity is SeverityError or SeverityWarning.
	Severity string
	// Allowed reports that a -- cutover:allow comment before the statement
	// accepts this finding, with AllowReason as its reason.
	Allowed bool
	// AllowReason is the reason given by the allow comment.
	AllowReason string
}

// Blocks reports whether the finding refuses the migration: an error that no
// allow comment accepts.
func (f Finding) Blocks() bool { return f.Severity == SeverityError && !f.Allowed }

// String formats the finding for people:
//
//	path:line: RULE-ID: why
//	  statement
//	  safe way: fix
func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: %s: %s", f.Path, f.Line, f.Rule, f.Why)
	if f.Statement != "" {
		for _, line := range strings.Split(f.Statement, "\n") {
			b.WriteString("\n  ")
			b.WriteString(strings.TrimRight(line, " \t\r"))
		}
	}
	fmt.Fprintf(&b, "\n  safe way: %s", f.Fix)
	if f.Allowed {
		fmt.Fprintf(&b, "\n  allowed: %s", f.AllowReason)
	}
	return b.String()
}

// Check lints files and returns their findings, in file order and, within a
// file, in statement order. Findings accepted by a -- cutover:allow comment
// are included with Allowed set. Each file is parsed once.
func Check(files []File, opts Options) []Finding {
	var out []Finding
	for _, f := range files {
		out = append(out, checkFile(f, opts)...)
	}
	return out
}

// hit is one rule firing on one statement.
type hit struct {
	rule string
	// note adds what is specific to this statement to the rule's Why.
	note string
}

func checkFile(f File, opts Options) []Finding {
	first := f.FirstLine
	if first < 1 {
		first = 1
	}
	phase := PhaseExpand
	if f.Phase == PhaseContract {
		phase = PhaseContract
	}
	var (
		stmts []sqlsplit.Statement
		err   error
		check func(sqlsplit.Statement) []hit
	)
	switch opts.Dialect {
	case DialectPostgres, "":
		stmts, err = sqlsplit.Postgres(f.SQL)
		check = newPostgresChecker(f.Transactional).check
	case DialectSQLite:
		stmts, err = sqlsplit.SQLite(f.SQL)
		check = newSQLiteChecker(f.Transactional).check
	default:
		err = fmt.Errorf("unknown SQL dialect %q (want %q or %q)", opts.Dialect, DialectPostgres, DialectSQLite)
	}
	if err != nil {
		// The finding names the line of the file; the splitter's error
		// counts from the start of the SQL, which may be a later line
		// (a goose section), so only its message is kept.
		line, msg := 1, err.Error()
		var se *sqlsplit.Error
		if errors.As(err, &se) {
			line, msg = se.Line, se.Msg
		}
		r := ruleByID[ruleParseError]
		return []Finding{{
			Path: f.Path, Line: first + line - 1, Rule: r.ID,
			Why: msg + ": " + r.Why, Fix: r.Fix, Severity: r.severity(phase),
		}}
	}

	var out []Finding
	for _, st := range stmts {
		allows, bad := readAllows(st.Comments)
		hits := append(bad, check(st)...)
		for _, h := range hits {
			r := ruleByID[h.rule]
			sev := r.severity(phase)
			if sev == "" {
				continue
			}
			fd := Finding{
				Path: f.Path, Line: first + st.Line - 1, Rule: r.ID, Statement: st.SQL,
				Why: r.Why, Fix: r.Fix, Severity: sev,
			}
			if h.note != "" {
				fd.Why = h.note + ": " + r.Why
			}
			if reason, ok := allows[r.ID]; ok && !isMetaRule(r.ID) {
				fd.Allowed, fd.AllowReason = true, reason
			}
			out = append(out, fd)
		}
	}
	return out
}

// isMetaRule reports whether id is a rule about the lint comments or the
// file's syntax, which no allow comment can accept.
func isMetaRule(id string) bool {
	return id == ruleParseError || id == ruleAllowWithoutReason || id == ruleAllowUnknownRule
}

// allowPrefix starts a suppression comment.
const allowPrefix = "cutover:allow"

// readAllows reads the "-- cutover:allow RULE-ID reason" comments among a
// statement's leading comments. It returns the reason for each allowed rule,
// and hits for allow comments that are malformed.
func readAllows(comments []string) (map[string]string, []hit) {
	var (
		allows map[string]string
		bad    []hit
	)
	for _, c := range comments {
		text := commentText(c)
		rest, ok := strings.CutPrefix(text, allowPrefix)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		id, reason := strings.TrimSpace(rest), ""
		if i := strings.IndexAny(id, " \t"); i >= 0 {
			id, reason = id[:i], strings.TrimSpace(id[i:])
		}
		if id == "" || reason == "" {
			bad = append(bad, hit{rule: ruleAllowWithoutReason, note: fmt.Sprintf("%q", text)})
			continue
		}
		if _, known := ruleByID[id]; !known {
			bad = append(bad, hit{rule: ruleAllowUnknownRule, note: fmt.Sprintf("no rule %q", id)})
			continue
		}
		if allows == nil {
			allows = make(map[string]string)
		}
		allows[id] = reason
	}
	return allows, bad
}

// commentText returns a comment's text without its markers.
func commentText(c string) string {
	if s, ok := strings.CutPrefix(c, "--"); ok {
		return strings.TrimSpace(s)
	}
	s := strings.TrimPrefix(c, "/*")
	s = strings.TrimSuffix(s, "*/")
	return strings.TrimSpace(s)
}
