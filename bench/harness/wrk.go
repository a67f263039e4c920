package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// throughput is a closed-loop wrk scenario: as many requests as the
// target answers, from a fixed number of connections.
type throughput struct {
	// Name is the scenario's key in the table.
	Name string
	// Title describes it in the table.
	Title string
	// Path is requested on the target's base URL.
	Path string
	// Conns is wrk's connection count (-c); wrk always runs one thread.
	Conns int
	// Script is the Lua request part (before the shared done function);
	// "" = plain GET.
	Script string
	// Header is an extra request header, "Name: value"; "" = none.
	Header string
	// TLS marks the scenarios of the TLS listeners: they run on the
	// targets whose URL is https://, the others on the http:// ones.
	TLS bool
	// H2 runs the scenario with h2load over HTTP/2 instead of wrk.
	H2 bool
}

// throughputScenarios are the closed-loop scenarios, in table order.
var throughputScenarios = []throughput{
	{Name: "get", Title: "small GET, keep-alive (13 B)", Path: "/", Conns: 50},
	{Name: "close", Title: "fresh connection per request", Path: "/", Conns: 50, Header: "Connection: close"},
	{Name: "download", Title: "1 MiB download", Path: "/1m", Conns: 16},
	{Name: "upload", Title: "1 MiB upload", Path: "/upload", Conns: 16, Script: uploadScript},
	{Name: "tls-get", Title: "TLS: small GET, HTTP/1.1 keep-alive", Path: "/", Conns: 50, TLS: true},
	{Name: "tls-h2", Title: "TLS: small GET, HTTP/2 (h2load, 1 stream per connection)", Path: "/", Conns: 50, TLS: true, H2: true},
	{Name: "tls-close", Title: "TLS: new connection (full handshake) per request", Path: "/", Conns: 50, Header: "Connection: close", TLS: true},
	{Name: "tls-download", Title: "TLS: 1 MiB download", Path: "/1m", Conns: 16, TLS: true},
}

// isTLSScenario reports whether the scenario named name runs on the TLS
// targets.
func isTLSScenario(name string) bool { return strings.HasPrefix(name, "tls-") }

// uploadScript makes every wrk request a POST of 1 MiB.
const uploadScript = `wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
`

// doneScript makes wrk print one machine-readable line at the end.
const doneScript = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests int64
	Duration time.Duration
	Bytes    int64
	// Errors sums socket errors (connect, read, write, timeout) and
	// responses with a status other than 2xx or 3xx.
	Errors int64
	P50    time.Duration
	P99    time.Duration
}

// RPS returns requests per second.
func (r wrkResult) RPS() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// parseWrk finds the WRKRESULT line in wrk's output.
func parseWrk(out string) (wrkResult, error) {
	var line string
	for l := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(l, "WRKRESULT "); ok {
			line = rest
		}
	}
	if line == "" {
		return wrkResult{}, fmt.Errorf("no WRKRESULT line in wrk output %q", out)
	}
	vals := make(map[string]int64)
	for _, kv := range strings.Fields(line) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return wrkResult{}, fmt.Errorf("WRKRESULT field %q: want key=value", kv)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return wrkResult{}, fmt.Errorf("WRKRESULT field %q: %w", kv, err)
		}
		vals[k] = n
	}
	for _, k := range []string{"requests", "duration_us", "bytes", "connect", "read", "write", "status", "timeout", "p50_us", "p99_us"} {
		if _, ok := vals[k]; !ok {
			return wrkResult{}, fmt.Errorf("WRKRESULT line %q lacks %s", line, k)
		}
	}
	return wrkResult{
		Requests: vals["requests"],
		Duration: time.Duration(vals["duration_us"]) * time.Microsecond,
		Bytes:    vals["bytes"],
		Errors:   vals["connect"] + vals["read"] + vals["write"] + vals["status"] + vals["timeout"],
		P50:      time.Duration(vals["p50_us"]) * time.Microsecond,
		P99:      time.Duration(vals["p99_us"]) * time.Microsecond,
	}, nil
}

// writeScripts writes one Lua script per throughput scenario into dir and
// returns their paths by scenario name.
func writeScripts(dir string) (map[string]string, error) {
	paths := make(map[string]string)
	for _, s := range throughputScenarios {
		p := filepath.Join(dir, "wrk-"+s.Name+".lua")
		if err := os.WriteFile(p, []byte(s.Script+doneScript), 0o644); err != nil {
			return nil, fmt.Errorf("write wrk script for %s: %w", s.Name, err)
		}
		paths[s.Name] = p
	}
	return paths, nil
}

// runWrk runs one wrk measurement of s against t for d (with h2load
// when s.H2).
func runWrk(ctx context.Context, wrk, script string, s throughput, t target, d time.Duration) (wrkResult, error) {
	if s.H2 {
		return runH2load(ctx, s, t, d)
	}
	args := []string{"-t1", "-c" + strconv.Itoa(s.Conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--timeout", "10s", "-s", script}
	if s.Header != "" {
		args = append(args, "-H", s.Header)
	}
	args = append(args, t.URL+s.Path)
	cmd := exec.CommandContext(ctx, wrk, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s on %s: %w: %s", s.Name, t.Name, err, out.String())
	}
	r, err := parseWrk(out.String())
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s on %s: %w", s.Name, t.Name, err)
	}
	return r, nil
}
