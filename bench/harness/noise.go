package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stall is one late wake-up of bench/noiseprobe's real-time threads.
type stall struct {
	At   time.Time
	Late time.Duration
}

// parseStall reads one line of noiseprobe's output: "<cpu> <unix ns>
// <lateness ns>".
func parseStall(line string) (stall, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return stall{}, fmt.Errorf("noise probe line %q: want 3 fields", line)
	}
	at, err1 := strconv.ParseInt(f[1], 10, 64)
	late, err2 := strconv.ParseInt(f[2], 10, 64)
	if _, err := strconv.Atoi(f[0]); err != nil || err1 != nil || err2 != nil || late < 0 {
		return stall{}, fmt.Errorf("noise probe line %q: want <cpu> <unix ns> <lateness ns>", line)
	}
	return stall{At: time.Unix(0, at), Late: time.Duration(late)}, nil
}

// parseRealtime reads noiseprobe's first line, "# realtime <k> of <n>":
// whether all its threads got real-time priority.
func parseRealtime(line string) (all, ok bool) {
	var k, n int
	if _, err := fmt.Sscanf(line, "# realtime %d of %d", &k, &n); err != nil || n <= 0 {
		return false, false
	}
	return k == n, true
}

// noiseProbe is a running bench/noiseprobe and the stalls it reported.
type noiseProbe struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when its output is read to the end
	mu   sync.Mutex
	got  []stall
	bad  error // the first line that did not parse
	// realtime says whether all its threads ran at real-time priority.
	realtime bool
}

// startNoiseProbe starts bin and collects its stalls until stop.
func startNoiseProbe(ctx context.Context, bin string) (*noiseProbe, error) {
	p := &noiseProbe{done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, "-for", "1h")
	p.cmd.Stderr = os.Stderr // its warnings go to the harness's log
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("noise probe: %w", err)
	}
	go p.read(out)
	return p, nil
}

func (p *noiseProbe) read(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if all, ok := parseRealtime(sc.Text()); ok {
			p.mu.Lock()
			p.realtime = all
			p.mu.Unlock()
			continue
		}
		s, err := parseStall(sc.Text())
		p.mu.Lock()
		if err != nil && p.bad == nil {
			p.bad = err
		} else if err == nil {
			p.got = append(p.got, s)
		}
		p.mu.Unlock()
	}
}

// stop ends the probe and returns the stalls it reported and whether all
// its threads ran at real-time priority.
func (p *noiseProbe) stop() (stalls []stall, realtime bool, err error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	_ = p.cmd.Wait() // it exits 0 on SIGTERM; a crash shows as missing stalls, not worth failing the run
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got, p.realtime, p.bad
}

// noiseResult is the machine's own stalls during the deploy scenario, as
// the noise probe saw them, inside the deploy windows and outside every
// window (deploy and control).
type noiseResult struct {
	// Realtime says whether the probe ran at real-time priority, where no
	// ordinary process delays it; without, its stalls include theirs.
	Realtime bool
	// Per second of each span: wake-ups at least 1 ms and 2 ms late.
	InWindows1ms, InWindows2ms float64
	Outside1ms, Outside2ms     float64
	// Longest is the latest wake-up of the scenario.
	Longest time.Duration
	// WindowLongest is, for each deploy window, the longest stall that
	// overlapped it (a stall ends at the late wake-up and began Late
	// before): a window whose requests all waited out the same stall
	// shows it here.
	WindowLongest []time.Duration `json:",omitempty"`
}

// splitNoise counts the stalls of [from, to] inside the deploy windows and
// outside all windows, per second of each.
func splitNoise(stalls []stall, deploys, control []window, from, to time.Time) noiseResult {
	var r noiseResult
	in := span(deploys).Seconds()
	out := to.Sub(from).Seconds() - in - span(control).Seconds()
	var inN, outN [2]int // stalls of at least 1 ms, 2 ms
	count := func(n *[2]int, late time.Duration) {
		if late >= time.Millisecond {
			n[0]++
		}
		if late >= 2*time.Millisecond {
			n[1]++
		}
	}
	r.WindowLongest = make([]time.Duration, len(deploys))
	for _, s := range stalls {
		if s.At.Before(from) || s.At.After(to) {
			continue
		}
		r.Longest = max(r.Longest, s.Late)
		for i, w := range deploys {
			if s.At.Add(-s.Late).Before(w.End) && s.At.After(w.Start) {
				r.WindowLongest[i] = max(r.WindowLongest[i], s.Late)
			}
		}
		switch {
		case inAny(deploys, s.At):
			count(&inN, s.Late)
		case inAny(control, s.At):
		default:
			count(&outN, s.Late)
		}
	}
	if in > 0 {
		r.InWindows1ms, r.InWindows2ms = float64(inN[0])/in, float64(inN[1])/in
	}
	if out > 0 {
		r.Outside1ms, r.Outside2ms = float64(outN[0])/out, float64(outN[1])/out
	}
	return r
}
