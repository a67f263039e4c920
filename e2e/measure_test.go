package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// TestMeasureRestarts measures what each way of restarting or replacing
// the daemon costs clients, at 150 and 500 requests/s (a quarter of them
// on fresh connections): refused connections, failed requests (refused
// included) and the longest request, counted from the event until the
// new daemon serves plus one second. It asserts nothing beyond a working
// setup: its numbers are in docs/deploy.md. Run it with nothing else loading
// the machine:
//
//	CUTOVER_MEASURE=1 go test -count=1 -run TestMeasureRestarts -v ./e2e
func TestMeasureRestarts(t *testing.T) {
	if os.Getenv("CUTOVER_MEASURE") == "" {
		t.Skip("set CUTOVER_MEASURE=1 to measure (alone on the machine: a second load skews the figures)")
	}
	type scenario struct {
		name string
		do   func(e *env)
	}
	scenarios := []scenario{
		{"cutover upgrade", func(e *env) {
			if out, errOut, code := e.run("upgrade"); code != 0 {
				t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
			}
		}},
		{"SIGTERM to the keeper + restart", func(e *env) {
			e.daemon.Process.Signal(syscall.SIGTERM)
			<-e.daemonW
			e.daemon = nil
			e.serve()
		}},
		{"kill -9 of the daemon", func(e *env) {
			e.waitNewDaemon(e.killDaemon())
		}},
		{"kill -9 of the keeper + restart", func(e *env) {
			e.killKeeper()
			e.serve()
		}},
	}
	var rows []string
	rates := []int{150, 500}
	if r := os.Getenv("CUTOVER_MEASURE_RATE"); r != "" {
		n, err := strconv.Atoi(r)
		if err != nil {
			t.Fatalf("CUTOVER_MEASURE_RATE=%q: %v", r, err)
		}
		rates = []int{n}
	}
	for _, rate := range rates {
		e := newEnv(t, settings{instances: 2})
		e.serve()
		if _, _, err := e.deploy(deploy.Request{Source: e.release("v1", "")}); err != nil {
			t.Fatal(err)
		}
		for _, s := range scenarios {
			gen := load.Start(load.Options{URL: e.url("/"), Rate: rate, FreshShare: 0.25, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "before")
			time.Sleep(500 * time.Millisecond)
			gen.Mark(s.name)
			start := time.Now()
			s.do(e)
			took := time.Since(start)
			time.Sleep(time.Second)
			gen.Mark("after")
			time.Sleep(200 * time.Millisecond)
			rep := gen.Stop()
			p := rep.Phases[1]
			refused := 0
			for msg, n := range p.Errors {
				if strings.Contains(msg, "connection refused") {
					refused += n
				}
			}
			row := fmt.Sprintf("| %s | %d | %d | %d | %d | %s |", s.name, rate, p.Requests, refused, p.Failed, p.Max.Round(time.Millisecond))
			rows = append(rows, row)
			t.Logf("%s (took %s) errors %v", row, took.Round(time.Millisecond), p.Errors)
			if os.Getenv("CUTOVER_MEASURE") == "log" {
				t.Logf("daemon log:\n%s", tail(e.daemonLog(), 25))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Logf("\n| what | req/s | requests | refused | failed | longest |\n|---|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}
