// Command judge measures cutover's canary judge on real processes: two
// releases of the demo app (2 instances each, separate processes) behind
// cutover's proxy, under steady load from vegeta, on a machine a burner
// process makes noisy by spinning one core in bursts. One long run is cut
// into successive canary steps of -step each; every step is judged the
// way the deploy judges one — canary.Judge on the proxy's windows of the
// two releases since the step began, every -look, failing at the first
// failed look — and the figures say how many steps failed and, for those,
// how many canary requests it took.
//
//	go run ./bench/judge -scenario aa        # identical releases: false rollbacks
//	go run ./bench/judge -scenario slow      # canary does twice the work
//	go run ./bench/judge -scenario errors    # canary fails 5 points more often
//
// Run it under the load lock of a shared machine
// (flock /tmp/cutover-load.lock go run ./bench/judge ...). Every process
// it starts is stopped when it returns, and killed with it however it
// ends (Pdeathsig, Linux); the burner also stops after -max.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/canary"
	"github.com/cutover/cutover/internal/demoapp"
	"github.com/cutover/cutover/internal/load"
	"github.com/cutover/cutover/internal/proxy"
)

// roleEnv tells a re-executed copy of this binary what to be.
const roleEnv = "CUTOVER_JUDGE_BENCH_ROLE"

func main() {
	switch os.Getenv(roleEnv) {
	case "app":
		os.Exit(demoapp.Main())
	case "burn":
		os.Exit(burn())
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "judge:", err)
		os.Exit(1)
	}
}

type options struct {
	scenario  string
	steps     int
	step      time.Duration
	look      time.Duration
	rate      int
	weight    int
	work      uint64
	instances int
	burner    bool
	max       time.Duration
}

func run() error {
	var o options
	flag.StringVar(&o.scenario, "scenario", "aa", `"aa" (identical releases), "slow" (canary does twice the work) or "errors" (canary fails 5.5% of requests, baseline 0.5%)`)
	flag.IntVar(&o.steps, "steps", 100, "canary steps to judge")
	flag.DurationVar(&o.step, "step", 5*time.Second, "length of a step")
	flag.DurationVar(&o.look, "look", 100*time.Millisecond, "how often a step is judged (the deploy's judgeEvery)")
	flag.IntVar(&o.rate, "rate", 200, "requests per second, both releases")
	flag.IntVar(&o.weight, "weight", 50, "canary's share of requests, percent")
	flag.Uint64Var(&o.work, "work", 1000000, "DEMO_WORK of the baseline (rounds of CPU work per request; ~0.84ns each)")
	flag.IntVar(&o.instances, "instances", 2, "instances per release")
	flag.BoolVar(&o.burner, "burner", true, "run a process spinning one core in bursts")
	flag.DurationVar(&o.max, "max", 20*time.Minute, "bound on the whole run")
	flag.Parse()

	envA := []string{"DEMO_VERSION=baseline", "DEMO_WORK=" + strconv.FormatUint(o.work, 10)}
	envB := []string{"DEMO_VERSION=canary", "DEMO_WORK=" + strconv.FormatUint(o.work, 10)}
	switch o.scenario {
	case "aa":
	case "slow":
		envB[1] = "DEMO_WORK=" + strconv.FormatUint(2*o.work, 10)
	case "errors":
		envA = append(envA, "DEMO_ERROR_RATE=0.005")
		envB = append(envB, "DEMO_ERROR_RATE=0.055")
	default:
		return fmt.Errorf("-scenario %q: want aa, slow or errors", o.scenario)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.max)
	defer cancel()
	deadline, _ := ctx.Deadline()

	p := proxy.New(proxy.Options{})
	var procs []*exec.Cmd
	defer func() {
		for _, c := range procs {
			_ = c.Process.Kill() // stopping what this run started; its exit status says nothing
			_ = c.Wait()
		}
	}()
	for _, rel := range []struct {
		name string
		env  []string
	}{{"baseline", envA}, {"canary", envB}} {
		for i := range o.instances {
			cmd, addr, err := startApp(ctx, rel.env, deadline)
			if err != nil {
				return fmt.Errorf("start %s instance %d: %w", rel.name, i+1, err)
			}
			procs = append(procs, cmd)
			p.AddBackend(proxy.BackendSpec{ID: fmt.Sprintf("%s-%d", rel.name, i+1), Release: rel.name, Addr: addr}).SetHealthy(true)
		}
	}
	p.SetWeights(map[string]int{"canary": o.weight, "baseline": 100 - o.weight})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := p.NewServer(10*time.Second, 2*time.Minute)
	go srv.Serve(ln)
	defer srv.Close()

	if o.burner {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		b := exec.CommandContext(ctx, self)
		b.Env = append(os.Environ(), roleEnv+"=burn", "CUTOVER_JUDGE_BENCH_UNTIL="+strconv.FormatInt(deadline.Unix(), 10))
		b.Stderr = os.Stderr
		b.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := b.Start(); err != nil {
			return fmt.Errorf("start burner: %w", err)
		}
		procs = append(procs, b)
	}

	gen := load.Start(load.Options{URL: "http://" + ln.Addr().String() + "/", Rate: o.rate, MaxDuration: o.max}, "judge")
	stopped := false
	defer func() {
		if !stopped {
			gen.Stop()
		}
	}()
	time.Sleep(2 * time.Second) // connections and caches warm

	crit := canary.Criteria{Confidence: canary.DefaultConfidence, MinLatencyEffect: canary.DefaultMinLatencyEffect,
		MinErrorEffect: canary.DefaultMinErrorEffect, MaxErrorRate: 0.05, MinRequests: 20}
	fmt.Printf("scenario %s: %d steps of %s at %d req/s, canary %d%%, %d instances a release, DEMO_WORK %d, burner %v, %d CPUs\n",
		o.scenario, o.steps, o.step, o.rate, o.weight, o.instances, o.work, o.burner, runtime.NumCPU())
	var failed, needed []int
	var ratios []float64
	var canaryReqs []int
	for s := range o.steps {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped after %d steps: %w", s, ctx.Err())
		}
		// Steps start just after a second boundary, so each one's window
		// holds its own seconds.
		start := time.Now().Truncate(time.Second).Add(time.Second + 5*time.Millisecond)
		time.Sleep(time.Until(start))
		var v canary.Verdict
		for at := start.Add(o.look); ; at = at.Add(o.look) {
			time.Sleep(time.Until(at))
			d := time.Since(start)
			v = canary.Judge(p.Window("canary", d), p.Window("baseline", d), crit)
			if (v.Enough && !v.OK) || d >= o.step {
				break
			}
		}
		canaryReqs = append(canaryReqs, int(v.Canary.Requests))
		if v.LatencyRatio.Known {
			ratios = append(ratios, v.LatencyRatio.Value)
		}
		if v.Enough && !v.OK {
			failed = append(failed, s)
			needed = append(needed, int(v.Canary.Requests))
			fmt.Printf("step %d failed after %d canary requests: %s\n", s+1, v.Canary.Requests, v.Reason)
		}
	}
	rep := gen.Stop()
	stopped = true
	slices.Sort(needed)
	slices.Sort(ratios)
	slices.Sort(canaryReqs)
	fmt.Printf("result %s: %d of %d steps failed", o.scenario, len(failed), o.steps)
	if len(needed) > 0 {
		fmt.Printf("; canary requests when caught: median %d, p90 %d, max %d", at(needed, 0.5), at(needed, 0.9), at(needed, 1))
	}
	fmt.Println()
	if len(ratios) > 0 {
		fmt.Printf("latency ratio canary/baseline per step: median %.3f, min %.3f, max %.3f; canary requests per step: median %d\n",
			at(ratios, 0.5), at(ratios, 0), at(ratios, 1), at(canaryReqs, 0.5))
	}
	rep.Print(os.Stdout)
	return nil
}

func at[T any](xs []T, q float64) T {
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}

// startApp starts one demo app instance, a copy of this binary, on a free
// port and waits for its health check.
func startApp(ctx context.Context, env []string, deadline time.Time) (*exec.Cmd, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(append(os.Environ(), roleEnv+"=app", "PORT="+port), env...)
	cmd.Stderr = os.Stderr
	cmd.Dir = os.TempDir()
	// Killed with this process, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	for range 100 {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, addr, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill() // it never became healthy; the error below says so
	_ = cmd.Wait()
	return nil, "", errors.New("no healthy answer on " + addr + " within 5s")
}

// burn spins one core in bursts of 0.2–1.5s separated by 0.5–3s of rest,
// until CUTOVER_JUDGE_BENCH_UNTIL (Unix seconds) or its parent is gone.
func burn() int {
	runtime.GOMAXPROCS(1)
	until, err := strconv.ParseInt(os.Getenv("CUTOVER_JUDGE_BENCH_UNTIL"), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "burner: CUTOVER_JUDGE_BENCH_UNTIL:", err)
		return 2
	}
	parent := os.Getppid()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	x := uint64(1)
	for time.Now().Unix() < until && os.Getppid() == parent {
		end := time.Now().Add(time.Duration((0.2 + 1.3*r.Float64()) * float64(time.Second)))
		for time.Now().Before(end) {
			for range 100000 {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
			}
		}
		time.Sleep(time.Duration((0.5 + 2.5*r.Float64()) * float64(time.Second)))
	}
	if x == 0 {
		fmt.Println() // keeps the loop
	}
	return 0
}
