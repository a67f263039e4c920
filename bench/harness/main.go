package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config is the harness's command line.
type config struct {
	targets  string
	outDir   string
	wrk      string
	rounds   int
	duration time.Duration
	rate     int
	idle     int
	only     map[string]bool
	// cutover deploy scenario.
	cutover, cutoverConfig, releaseDir string
	deploys                            int
	settle                             time.Duration
	// control swaps of the deploy scenario.
	swapBin          string
	noiseProbe       string
	swapInterval     time.Duration
	swapHealthyAfter int
	// gogc is the harness's own GOGC (tuneLoadGC).
	gogc int
}

// allScenarios are the scenario names -only accepts.
var allScenarios = []string{"get", "close", "download", "upload", "latency", "idle", "deploy",
	"tls-get", "tls-h2", "tls-close", "tls-download"}

func main() {
	var c config
	var only string
	flag.StringVar(&c.targets, "targets", "", "targets file: name<TAB>url<TAB>pid,pid per line (required)")
	flag.StringVar(&c.outDir, "out", ".", "directory for table.md, results.json and the wrk scripts")
	flag.StringVar(&c.wrk, "wrk", "wrk", "wrk binary")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds; every round runs every scenario on every target")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of one measurement (whole seconds)")
	flag.IntVar(&c.rate, "rate", 2000, "requests per second of the fixed-rate scenarios")
	flag.IntVar(&c.idle, "idle", 1000, "idle keep-alive connections of the memory scenario")
	flag.StringVar(&only, "only", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ","))
	flag.StringVar(&c.cutover, "cutover", "", "cutover binary, for the deploy scenario")
	flag.StringVar(&c.cutoverConfig, "cutover-config", "", "cutover.toml of the running daemon, for the deploy scenario")
	flag.StringVar(&c.releaseDir, "release-dir", "", "release directory deployed by the deploy scenario")
	flag.IntVar(&c.deploys, "deploys", 2, "deploys in the deploy scenario")
	flag.DurationVar(&c.settle, "settle", 1500*time.Millisecond, "steady load before, between and after deploys")
	flag.StringVar(&c.swapBin, "swap-backend", "", "backend binary of the deploy scenario's control swaps (listens on $PORT); empty: no control")
	flag.StringVar(&c.noiseProbe, "noise-probe", "", "bench/noiseprobe binary, run during the deploy scenario to measure the machine's own stalls; empty: none")
	flag.DurationVar(&c.swapInterval, "swap-interval", 100*time.Millisecond, "health check interval of the control swaps (as cutover's [app.health] interval)")
	flag.IntVar(&c.swapHealthyAfter, "swap-healthy-after", 2, "passing checks in a row before a control swap stops the previous copy (as cutover's healthy_after)")
	flag.Parse()
	c.gogc = tuneLoadGC(os.Getenv("GOGC"))

	c.only = make(map[string]bool)
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fmt.Fprintf(os.Stderr, "harness: unknown scenario %q in -only (want some of %s)\n", s, strings.Join(allScenarios, ","))
			os.Exit(2)
		}
		c.only[s] = true
	}
	if c.targets == "" || c.rounds < 1 || c.duration < time.Second {
		fmt.Fprintln(os.Stderr, "harness: -targets is required; -rounds ≥ 1; -duration ≥ 1s")
		os.Exit(2)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, logger, os.Stdout); err != nil {
		logger.Error("harness failed", "err", err)
		os.Exit(1)
	}
}

// run measures every selected scenario and writes table.md and
// results.json into c.outDir; the table also goes to stdout.
func run(ctx context.Context, c config, logger *slog.Logger, stdout io.Writer) error {
	f, err := os.Open(c.targets)
	if err != nil {
		return fmt.Errorf("open targets: %w", err)
	}
	targets, err := parseTargets(f)
	f.Close()
	if err != nil {
		return err
	}
	scripts, err := writeScripts(c.outDir)
	if err != nil {
		return err
	}
	res := newResults(targets, c.rounds, c.duration, c.rate)

	// Warm-up: fill connection pools, let Go heaps and nginx workers reach
	// their working size. Not recorded.
	for _, t := range targets {
		logger.Info("warm-up", "target", t.Name)
		sc, script := throughputScenarios[0], scripts["get"]
		if strings.HasPrefix(t.URL, "https://") {
			sc, script = tpScenario("tls-get"), scripts["tls-get"]
		}
		if _, err := runWrk(ctx, c.wrk, script, sc, t, time.Second); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	for round := range c.rounds {
		order := rotate(targets, round)
		for _, sc := range throughputScenarios {
			if !c.only[sc.Name] {
				continue
			}
			for _, t := range order {
				if !t.in(sc.Name) {
					continue
				}
				s, err := measureWrk(ctx, c, scripts[sc.Name], sc, t)
				if err != nil {
					return err
				}
				logger.Info("measured", "round", round+1, "scenario", sc.Name, "target", t.Name,
					"rps", int(s.RPS), "cpu_us_per_req", fmt.Sprintf("%.1f", s.CPUus), "errors", s.Errors)
				res.addTP(sc.Name, t.Name, s)
			}
		}
		if c.only["latency"] {
			for _, t := range order {
				if !t.in("latency") {
					continue
				}
				s, err := measureLatency(ctx, c, t)
				if err != nil {
					return err
				}
				logger.Info("measured", "round", round+1, "scenario", "latency", "target", t.Name,
					"p50", s.P50, "p99", s.P99, "failed", s.Failed, "sent", s.Requests)
				res.Latency[t.Name] = append(res.Latency[t.Name], s)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	if c.only["idle"] {
		for _, t := range targets {
			if !t.in("idle") {
				continue
			}
			s := measureIdle(ctx, t, c.idle)
			logger.Info("measured", "scenario", "idle", "target", t.Name, "before_kib", s.BeforeKiB, "at_kib", s.AtKiB, "err", s.Err)
			res.Idle[t.Name] = s
		}
	}

	if c.only["deploy"] {
		if err := measureDeploy(ctx, c, logger, targets, res); err != nil {
			logger.Warn("deploy scenario failed", "err", err)
			res.DeployErr = err.Error()
		}
	}

	var md strings.Builder
	res.writeMarkdown(&md)
	if err := os.WriteFile(filepath.Join(c.outDir, "table.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.outDir, "results.json"), raw, 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	_, err = io.WriteString(stdout, md.String())
	return err
}

// measureWrk runs one wrk measurement and the target's CPU time around it.
func measureWrk(ctx context.Context, c config, script string, sc throughput, t target) (tpSample, error) {
	before, err := cpuTime(t.PIDs)
	if err != nil {
		return tpSample{}, fmt.Errorf("%s on %s: %w", sc.Name, t.Name, err)
	}
	sysBefore, err := ioSyscalls(t.PIDs)
	if err != nil {
		return tpSample{}, fmt.Errorf("%s on %s: %w", sc.Name, t.Name, err)
	}
	r, err := runWrk(ctx, c.wrk, script, sc, t, c.duration)
	if err != nil {
		return tpSample{}, err
	}
	after, err := cpuTime(t.PIDs)
	if err != nil {
		return tpSample{}, fmt.Errorf("%s on %s: %w", sc.Name, t.Name, err)
	}
	sysAfter, err := ioSyscalls(t.PIDs)
	if err != nil {
		return tpSample{}, fmt.Errorf("%s on %s: %w", sc.Name, t.Name, err)
	}
	s := tpSample{RPS: r.RPS(), Errors: r.Errors}
	if r.Requests > 0 {
		s.CPUus = float64(after-before) / float64(time.Microsecond) / float64(r.Requests)
		s.Syscalls = float64(sysAfter-sysBefore) / float64(r.Requests)
	}
	return s, nil
}

// measureLatency runs the fixed-rate load on t.
func measureLatency(ctx context.Context, c config, t target) (latSample, error) {
	before, err := cpuTime(t.PIDs)
	if err != nil {
		return latSample{}, fmt.Errorf("latency on %s: %w", t.Name, err)
	}
	hits := fixedRate(ctx, t.URL+"/", c.rate, c.duration)
	after, err := cpuTime(t.PIDs)
	if err != nil {
		return latSample{}, fmt.Errorf("latency on %s: %w", t.Name, err)
	}
	s := latSample{latencySummary: summarize(hits)}
	if s.Requests > 0 {
		s.CPUus = float64(after-before) / float64(time.Microsecond) / float64(s.Requests)
	}
	return s, nil
}

// measureIdle reads t's memory, opens n idle connections, reads it again
// and closes them. A failure is recorded in the sample, not returned, so
// one target that refuses connections does not void the others.
func measureIdle(ctx context.Context, t target, n int) idleSample {
	s := idleSample{Conns: n}
	var err error
	if s.BeforeKiB, err = rssKiB(t.PIDs); err != nil {
		s.Err = err.Error()
		return s
	}
	conns, err := openIdle(ctx, t.URL, n)
	defer closeAll(conns)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	if s.AtKiB, err = rssKiB(t.PIDs); err != nil {
		s.Err = err.Error()
		return s
	}
	if s.PeakKiB, err = peakRSSKiB(t.PIDs); err != nil {
		s.Err = err.Error()
	}
	return s
}

// measureDeploy runs the deploy scenario against the "cutover" target.
func measureDeploy(ctx context.Context, c config, logger *slog.Logger, targets []target, res *results) error {
	if c.cutover == "" || c.cutoverConfig == "" || c.releaseDir == "" {
		return errors.New("-cutover, -cutover-config and -release-dir are needed")
	}
	var url string
	for _, t := range targets {
		if t.Name == "cutover" {
			url = t.URL + "/"
		}
	}
	if url == "" {
		return errors.New("no target named cutover")
	}
	d := deployer{Bin: c.cutover, Config: c.cutoverConfig, Source: c.releaseDir}
	var sw *swapper
	if c.swapBin != "" {
		sw = &swapper{Bin: c.swapBin, Interval: c.swapInterval, HealthyAfter: max(c.swapHealthyAfter, 1)}
	}
	var probe *noiseProbe
	if c.noiseProbe != "" {
		var err error
		if probe, err = startNoiseProbe(ctx, c.noiseProbe); err != nil {
			return err
		}
	}
	s0, t0, serr := cpuSteal()
	gc0 := numGC()
	r, err := deployUnderLoad(ctx, d, sw, url, c.rate, c.deploys, c.settle)
	if err == nil {
		g := splitLoadGC(gcPauses(gc0), r.deployWins, r.controlWins, r.from, r.to)
		g.GOGC = c.gogc
		r.LoadGC = &g
	}
	if probe != nil {
		stalls, realtime, perr := probe.stop()
		if perr != nil {
			logger.Warn("noise probe", "err", perr)
		}
		if err == nil {
			n := splitNoise(stalls, r.deployWins, r.controlWins, r.from, r.to)
			n.Realtime = realtime
			r.Noise = &n
		}
	}
	if err != nil {
		return err
	}
	r.StealPct = -1
	if s1, t1, err := cpuSteal(); err == nil && serr == nil && t1 > t0 {
		r.StealPct = 100 * float64(s1-s0) / float64(t1-t0)
	}
	res.Deploy = &r
	return nil
}
