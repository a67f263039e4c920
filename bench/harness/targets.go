package main

import (
	"bufio"
	"fmt"
	"io"
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
	// (all workers of nginx, the daemon of cutover).
	PIDs []int
}

// parseTargets reads a targets file: one "name<TAB>url<TAB>pid,pid" line
// per target; blank lines and lines starting with # are skipped.
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
		if len(f) != 3 {
			return nil, fmt.Errorf("targets line %d: got %d tab-separated fields, want 3 (name, url, pids)", line, len(f))
		}
		t := target{Name: f[0], URL: strings.TrimSuffix(f[1], "/")}
		for _, p := range strings.Split(f[2], ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || pid <= 0 {
				return nil, fmt.Errorf("targets line %d: pid %q is not a positive number", line, p)
			}
			t.PIDs = append(t.PIDs, pid)
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
