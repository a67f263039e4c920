package cli

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestLowerPriority runs lowerPriority in a child process (it cannot be
// undone without privileges) and checks the nice value of every thread,
// including threads started after it.
func TestLowerPriority(t *testing.T) {
	if os.Getenv("CUTOVER_TEST_LOWER_PRIORITY") == "1" {
		lowerPriority()
		before := len(threads())
		// Goroutines locked to their threads, parked: the runtime must start
		// new threads for the rest.
		stop := make(chan struct{})
		for range 4 {
			go func() {
				runtime.LockOSThread()
				<-stop
			}()
		}
		for len(threads()) < before+4 {
			runtime.Gosched()
		}
		for _, tid := range threads() {
			fmt.Printf("%d %d\n", tid, threadNice(t, tid))
		}
		os.Exit(0)
	}
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc: thread priorities cannot be read")
	}
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := max(20-raw, clientNice)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLowerPriority$")
	cmd.Env = append(os.Environ(), "CUTOVER_TEST_LOWER_PRIORITY=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	lines := strings.Fields(strings.TrimSpace(string(out)))
	if len(lines) < 2*5 {
		t.Fatalf("child reported %d values, want at least 5 threads:\n%s", len(lines), out)
	}
	for i := 0; i+1 < len(lines); i += 2 {
		if lines[i+1] != strconv.Itoa(want) {
			t.Errorf("thread %s runs at nice %s, want %d", lines[i], lines[i+1], want)
		}
	}
}

// threadNice reads a thread's nice value from /proc (field 19 of stat).
func threadNice(t *testing.T, tid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	n, err := strconv.Atoi(f[19-3])
	if err != nil {
		t.Fatalf("stat of thread %d: %q", tid, s)
	}
	return n
}
