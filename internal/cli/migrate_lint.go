package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/migrate"
	"github.com/cutover/cutover/internal/migrate/lint"
)

func newMigrateLintCmd(g *globals, f *migrateFlags) *cobra.Command {
	var asJSON bool
	var dialect string
	cmd := &cobra.Command{
		Use:   "lint",
		Short: "Check migrations for statements unsafe while the old release runs (never connects)",
		Long: `Parse every up migration with the real SQL parser and report what would break
the running release or lock busy tables in the expand phase, with file:line,
the rule, why, and the safe way. "-- cutover:allow RULE reason" above a
statement accepts it deliberately. Lint never connects to the database: the
dialect comes from --dialect, else the scheme of the database URL. Exit code 1
when any error is not allowed.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := f.resolve(g, false)
			if err != nil {
				return err
			}
			if dialect == "" && t.opts.URL != "" {
				if dialect, err = migrate.Dialect(t.opts.URL); err != nil {
					return &UsageError{Err: err}
				}
			}
			if dialect != migrate.DialectPostgres && dialect != migrate.DialectSQLite {
				return usageErrorf("lint needs the SQL dialect: pass --dialect postgres|sqlite or --database URL (got %q)", dialect)
			}
			set, err := migrate.LoadDir(t.dir, t.opts.Format)
			if err != nil {
				return err
			}
			findings := migrate.Lint(set, dialect)
			blocking := 0
			for _, fd := range findings {
				if fd.Blocks() {
					blocking++
				}
			}
			if asJSON {
				out := make([]findingJSON, 0, len(findings))
				for _, fd := range findings {
					out = append(out, findingJSON{Path: fd.Path, Line: fd.Line, Rule: fd.Rule, Statement: fd.Statement,
						Why: fd.Why, Fix: fd.Fix, Severity: fd.Severity, Allowed: fd.Allowed, AllowReason: fd.AllowReason})
				}
				if err := printJSON(g.stdout, out); err != nil {
					return err
				}
			} else {
				printFindings(g.stdout, findings)
				fmt.Fprintf(g.stdout, "%d migrations checked (%s): %d findings, %d blocking\n", len(set.Migrations), dialect, len(findings), blocking)
			}
			if blocking > 0 {
				return &silentError{code: ExitFailed, err: fmt.Errorf("%d unsafe statements", blocking)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the findings as JSON")
	cmd.Flags().StringVar(&dialect, "dialect", "", "postgres or sqlite (default: from the database URL)")
	return cmd
}

// findingJSON is one finding in `migrate lint --json`.
type findingJSON struct {
	Path        string `json:"path"`
	Line        int    `json:"line"`
	Rule        string `json:"rule"`
	Statement   string `json:"statement"`
	Why         string `json:"why"`
	Fix         string `json:"fix"`
	Severity    string `json:"severity"`
	Allowed     bool   `json:"allowed"`
	AllowReason string `json:"allow_reason,omitempty"`
}

func printFindings(w io.Writer, findings []lint.Finding) {
	for _, fd := range findings {
		sev := fd.Severity
		if fd.Allowed {
			sev = "allowed"
		}
		fmt.Fprintf(w, "%s:%d: %s [%s] %s\n", fd.Path, fd.Line, sev, fd.Rule, fd.Why)
		if fd.Statement != "" { // a parse error has none
			fmt.Fprintf(w, "    %s\n", firstLines(fd.Statement, 3))
		}
		if fd.Allowed {
			fmt.Fprintf(w, "    allowed: %s\n", fd.AllowReason)
		} else if fd.Fix != "" {
			fmt.Fprintf(w, "    instead: %s\n", fd.Fix)
		}
	}
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n    ")
}
