package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// target is one HTTP endpoint under test and the processes that serve it.
type target struct {
	// Name identifies the target in the table: "direct", "cutover", "nginx"...
	Name string
	// URL is the base URL, without a trailing slash: "http://127.0.0.1:9001".
	URL string
	// PIDs are the processes whose CPU time and memory are the target's
	// (all workers of nginx; the keeper and the daemon of cutover).
	PIDs []int
	// Only lists the scenarios the target takes part in; nil = all.
	Only map[string]bool
}

// in reports whether t takes part in scenario: the TLS scenarios run on
// the https:// targets only, the others on the http:// ones.
func (t target) in(scenario string) bool {
	if isTLSScenario(scenario) != strings.HasPrefix(t.URL, "https://") {
		return false
	}
	return t.Only == nil || t.Only[scenario]
}

// parseTargets reads a targets file: one "name<TAB>url<TAB>pid,pid" line
// per target, optionally followed by a tab and the comma-separated
// scenarios the target takes part in (all when absent); blank lines and
// lines starting with # are skipped.
func parseTargets(r io.Reader) ([]target, error) {
	var ts []target
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Split(s, "\t")
		if len(f) != 3 && len(f) != 4 {
			return nil, fmt.Errorf("targets line %d: got %d tab-separated fields, want 3 or 4 (name, url, pids[, scenarios])", line, len(f))
		}
		t := target{Name: f[0], URL: strings.TrimSuffix(f[1], "/")}
		for _, p := range strings.Split(f[2], ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || pid <= 0 {
				return nil, fmt.Errorf("targets line %d: pid %q is not a positive number", line, p)
			}
			t.PIDs = append(t.PIDs, pid)
		}
		if len(f) == 4 {
			t.Only = make(map[string]bool)
			for _, sc := range strings.Split(f[3], ",") {
				sc = strings.TrimSpace(sc)
				if !slices.Contains(allScenarios, sc) {
					return nil, fmt.Errorf("targets line %d: unknown scenario %q (want some of %s)", line, sc, strings.Join(allScenarios, ","))
				}
				t.Only[sc] = true
			}
		}
		ts = append(ts, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read targets: %w", err)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("targets: no target listed")
	}
	return ts, nil
}

// rotate returns ts starting at index k (mod len), for interleaving.
func rotate(ts []target, k int) []target {
	n := len(ts)
	out := make([]target, 0, n)
	for i := range n {
		out = append(out, ts[(k+i)%n])
	}
	return out
}
