// Command noiseprobe measures how late the machine wakes a thread that
// nothing in it may delay: one real-time thread per CPU (SCHED_FIFO,
// pinned), woken by a timer every period. An ordinary process cannot keep
// such a thread from running; a wake-up a millisecond late is the
// machine's own doing: the hypervisor running something else on the CPU,
// or the kernel. The benchmark's deploy scenario runs it beside the load
// to tell the machine's stalls from the ones a deploy causes.
//
// It first prints "# realtime <k> of <n>": how many of its n threads got
// real-time priority. Then it prints one line per late wake-up, "<cpu>
// <unix ns> <lateness ns>", and stops at SIGTERM, SIGINT, after -for, or
// when its parent exits. Without the right to real-time priority (root or
// CAP_SYS_NICE) it says so on stderr and measures at normal priority,
// where other processes also delay it.
//
// Linux only.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	period := flag.Duration("period", time.Millisecond, "timer period of each probe thread")
	minLate := flag.Duration("min", 500*time.Microsecond, "print wake-ups at least this late")
	limit := flag.Duration("for", time.Hour, "stop after this long")
	flag.Parse()
	if *period <= 0 || *minLate <= 0 || *limit <= 0 {
		fmt.Fprintln(os.Stderr, "noiseprobe: -period, -min and -for must be positive")
		os.Exit(2)
	}

	late := make(chan stall, 4096)
	realtime := make(chan bool)
	n := runtime.NumCPU()
	for cpu := range n {
		go probe(cpu, *period, *minLate, realtime, late)
	}
	k := 0
	for range n {
		if <-realtime {
			k++
		}
	}
	fmt.Printf("# realtime %d of %d\n", k, n)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	stop := time.After(*limit)
	parent := os.Getppid()
	orphaned := time.NewTicker(time.Second)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for {
		select {
		case s := <-late:
			fmt.Fprintf(w, "%d %d %d\n", s.cpu, s.at.UnixNano(), s.late.Nanoseconds())
			w.Flush() // a few lines a second at most; the reader wants them now
		case <-sig:
			return
		case <-stop:
			return
		case <-orphaned.C:
			if os.Getppid() != parent {
				return // whoever ran it is gone: a stray probe would disturb what runs next
			}
		}
	}
}

// stall is one late wake-up.
type stall struct {
	cpu  int
	at   time.Time // when the thread ran
	late time.Duration
}

// probe runs on its own OS thread, pinned to cpu at real-time priority,
// says on realtime whether it got that priority, and sends each wake-up at
// least minLate late to out (dropped if out is full: the printer is itself
// delayed then).
func probe(cpu int, period, minLate time.Duration, realtime chan<- bool, out chan<- stall) {
	runtime.LockOSThread() // never unlocked: the thread dies with the process
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		fmt.Fprintf(os.Stderr, "noiseprobe: cpu %d: pinning refused (%v); the probe may move between CPUs\n", cpu, err)
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}
	err := unix.SchedSetAttr(0, &attr, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "noiseprobe: cpu %d: real-time priority refused (%v); measuring at normal priority, where other processes delay the probe too\n", cpu, err)
	}
	realtime <- err == nil
	var now unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
	next := now.Nano()
	for {
		next += period.Nanoseconds()
		ts := unix.NsecToTimespec(next)
		for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
		}
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
		l := time.Duration(now.Nano() - next)
		if l < minLate {
			continue
		}
		select {
		case out <- stall{cpu: cpu, at: time.Now(), late: l}:
		default:
		}
		// Start again from now: the periods missed during the stall are
		// one stall, not a run of late wake-ups.
		next = now.Nano()
	}
}
