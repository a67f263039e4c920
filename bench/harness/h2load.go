package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// tpScenario returns the throughput scenario named name; it panics on a
// name the table does not have (a programming error).
func tpScenario(name string) throughput {
	for _, s := range throughputScenarios {
		if s.Name == name {
			return s
		}
	}
	panic("no throughput scenario " + name)
}

// runH2load runs one h2load measurement of s against t for d: one
// thread, s.Conns connections, one stream at a time on each — the same
// closed loop as wrk's, over HTTP/2.
func runH2load(ctx context.Context, s throughput, t target, d time.Duration) (wrkResult, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(s.Conns), "-m1", "-D" + strconv.Itoa(int(d.Seconds())), t.URL + s.Path}
	cmd := exec.CommandContext(ctx, "h2load", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("h2load %s on %s: %w: %s", s.Name, t.Name, err, out.String())
	}
	r, err := parseH2load(out.String(), time.Since(start))
	if err != nil {
		return wrkResult{}, fmt.Errorf("h2load %s on %s: %w", s.Name, t.Name, err)
	}
	return r, nil
}

var (
	h2Finished = regexp.MustCompile(`(?m)^finished in ([0-9.]+)(ms|s),`)
	h2Requests = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Status   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2Traffic  = regexp.MustCompile(`(?m)^traffic: [^(]*\((\d+)\) total`)
	h2Proto    = regexp.MustCompile(`(?m)^Application protocol: (\S+)`)
)

// parseH2load reads h2load's summary. h2load prints no percentiles, so
// P50 and P99 stay 0. A run that did not speak HTTP/2 is an error: the
// scenario would measure something else.
func parseH2load(out string, wall time.Duration) (wrkResult, error) {
	if m := h2Proto.FindStringSubmatch(out); m == nil || m[1] != "h2" {
		proto := "none"
		if m != nil {
			proto = m[1]
		}
		return wrkResult{}, fmt.Errorf("h2load negotiated %s, not h2: %q", proto, lastBytes(out))
	}
	fm := h2Finished.FindStringSubmatch(out)
	rm := h2Requests.FindStringSubmatch(out)
	sm := h2Status.FindStringSubmatch(out)
	if fm == nil || rm == nil || sm == nil {
		return wrkResult{}, fmt.Errorf("no summary in h2load output %q", lastBytes(out))
	}
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	secs, _ := strconv.ParseFloat(fm[1], 64)
	dur := time.Duration(secs * float64(time.Second))
	if fm[2] == "ms" {
		dur = time.Duration(secs * float64(time.Millisecond))
	}
	if dur <= 0 {
		dur = wall
	}
	r := wrkResult{
		Requests: n(rm[3]),
		Duration: dur,
		// Failed, errored and timed-out requests, and answers other
		// than 2xx or 3xx, as wrk's errors.
		Errors: n(rm[5]) + n(rm[6]) + n(rm[7]) + n(sm[3]) + n(sm[4]),
	}
	if tm := h2Traffic.FindStringSubmatch(out); tm != nil {
		r.Bytes = n(tm[1])
	}
	return r, nil
}

// lastBytes returns the last 500 bytes of s, for error messages.
func lastBytes(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		return "…" + s[len(s)-500:]
	}
	return s
}
