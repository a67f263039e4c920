package schema

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// toolDirs is where PostgreSQL's client programs live besides PATH
// (Debian and Ubuntu install each major version there). A variable so
// tests can point it elsewhere.
var toolDirs = "/usr/lib/postgresql/*/bin"

// pgTools are a pg_dump and the psql beside it.
type pgTools struct {
	pgDump, psql string
	major        int // pg_dump's major version
}

var toolVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// findTools picks the pg_dump of the lowest major version that is at least
// the server's: pg_dump refuses a newer server, and a much newer pg_dump
// writes settings an older server rejects (pg_dump 17 emits SET
// transaction_timeout). psql comes from the same directory, so it
// understands what that pg_dump writes (\restrict in recent minor
// releases).
func findTools(ctx context.Context, serverMajor int) (pgTools, error) {
	var cands []string
	if p, err := exec.LookPath("pg_dump"); err == nil {
		cands = append(cands, p)
	}
	found, _ := filepath.Glob(filepath.Join(toolDirs, "pg_dump")) // The pattern is valid.
	cands = append(cands, found...)
	var all []pgTools
	var seen []string
	for _, p := range cands {
		out, err := exec.CommandContext(ctx, p, "--version").Output()
		if err != nil {
			continue // Not a working pg_dump; another candidate may be.
		}
		m := toolVersion.FindSubmatch(out)
		if m == nil {
			continue
		}
		major, _ := strconv.Atoi(string(m[1])) // The pattern matched digits.
		if major < 10 && len(m[2]) > 0 {       // 9.6 is a major version of its own; compare as 9.
			major = 9
		}
		psql := filepath.Join(filepath.Dir(p), "psql")
		if !isExecutable(psql) {
			lp, err := exec.LookPath("psql")
			if err != nil {
				continue
			}
			psql = lp
		}
		all = append(all, pgTools{pgDump: p, psql: psql, major: major})
		seen = append(seen, fmt.Sprintf("%s (%d)", p, major))
	}
	slices.SortStableFunc(all, func(a, b pgTools) int { return a.major - b.major })
	for _, t := range all {
		if t.major >= serverMajor {
			return t, nil
		}
	}
	install := fmt.Sprintf("install the PostgreSQL %d client (Debian/Ubuntu: apt-get install postgresql-client-%d, from apt.postgresql.org when the distribution has no such version) or put its bin directory on PATH", serverMajor, serverMajor)
	if len(all) == 0 {
		return pgTools{}, fmt.Errorf("no pg_dump and psql found in PATH (%s) or %s: the schema preview copies the live schema with them; %s",
			os.Getenv("PATH"), toolDirs, install)
	}
	return pgTools{}, fmt.Errorf("no pg_dump of version %d or newer (the server's) found, only %s: pg_dump cannot dump a newer server; %s",
		serverMajor, strings.Join(seen, ", "), install)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
