package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/demoapp"
	"github.com/cutover/cutover/internal/supervisor"
)

// The test binary doubles as the app under deploy: with appEnv set (the
// tests put it in [app.env]), TestMain runs the demo app in the release
// directory instead of the tests. A release steers it with the demo app's
// own demo.env (DEMO_FAIL_BOOT, DEMO_FAIL_HEALTH, …) and with one knob of
// its own, failAfterFile.
const appEnv = "CUTOVER_DEPLOY_TEST_APP"

// failAfterFile, in a release, holds a number n: the first n instances of
// that release boot, every later one fails at once. It makes "the second
// batch of a rolling deploy fails" deterministic, with no race against the
// deploy's progress.
const failAfterFile = "fail-after"

// crashLoopFile, in a release, holds a number n: the first instance of
// the release to start is slow to boot (steadyBootDelay) and then serves;
// every other instance exits with status 1 at each of its first n starts
// (counted per $PORT, which a restart keeps) and then serves. It is a
// crash loop that ends, behind a healthy-looking boot.
const crashLoopFile = "crash-loop"

// steadyBootDelay is how long the steady instance of crashLoopFile takes
// to boot: longer than the crash loop of the others lasts (3 crashes take
// 0.1+0.2+0.4 s of the supervisor's backoff), so that they are healthy
// before it is.
const steadyBootDelay = 1500 * time.Millisecond

// slowAfterFile, in a release, holds "n d": the first n instances of that
// release boot at once, every later one waits d (a duration) first. It
// makes "the second batch of a rolling deploy is still booting"
// deterministic.
const slowAfterFile = "slow-after"

// stallStartFile, in a release, holds a number n: the n-th start of each
// instance (counted per $PORT, which a restart keeps) never serves: it
// sleeps until it is killed. Every other start serves.
const stallStartFile = "stall-start"

// recordNiceFile, in a release, makes each instance write the nice value it
// starts at to boot-nice-<pid> in the release directory.
const recordNiceFile = "record-nice"

// watchDrainFile, in a release, makes each instance watch for its drain
// file (CUTOVER_DRAIN_FILE) and, once it appears, copy it to
// drain-notice-<pid> in the release directory, as an app would act on it.
const watchDrainFile = "watch-drain"

// detachedChildFile, in a release, makes each instance start a child in a
// session of its own (setsid, as a Node `detached: true` worker or Python
// `start_new_session=True` does) that inherits the instance's environment,
// and write the child's pid to detached-<instance pid> in the release
// directory. The child sleeps until it is killed.
const detachedChildFile = "detached-child"

func TestMain(m *testing.M) {
	if os.Getenv(appEnv) == "1" {
		os.Exit(runApp())
	}
	os.Exit(m.Run())
}

func runApp() int {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		// The demo app's own migration tool (./db/NNN_name.sql), as a
		// release phase runs it.
		if err := demoapp.Migrate(context.Background(), os.Stdout, os.Stderr, false); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	if _, err := os.Stat(recordNiceFile); err == nil {
		nice, err := supervisor.ThreadNice(0)
		if err == nil {
			err = os.WriteFile(fmt.Sprintf("boot-nice-%d", os.Getpid()), []byte(strconv.Itoa(nice)), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "test app:", err)
			return 2
		}
	}
	if _, err := os.Stat(detachedChildFile); err == nil {
		child := exec.Command("sleep", "300")
		child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "test app:", err)
			return 2
		}
		if err := os.WriteFile(fmt.Sprintf("detached-%d", os.Getpid()), []byte(strconv.Itoa(child.Process.Pid)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "test app:", err)
			return 2
		}
	}
	if _, err := os.Stat(watchDrainFile); err == nil {
		go watchDrain(os.Getenv("CUTOVER_DRAIN_FILE"))
	}
	if b, err := os.ReadFile(failAfterFile); err == nil {
		limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "test app:", failAfterFile, err)
			return 2
		}
		if n := bootNumber(); n > limit {
			fmt.Fprintf(os.Stderr, "test app: boot %d of this release refused (%s = %d)\n", n, failAfterFile, limit)
			return 1
		}
	}
	if b, err := os.ReadFile(slowAfterFile); err == nil {
		var limit int
		var d time.Duration
		if _, err := fmt.Sscan(string(b), &limit, &d); err != nil {
			fmt.Fprintln(os.Stderr, "test app:", slowAfterFile, err)
			return 2
		}
		if n := bootNumber(); n > limit {
			fmt.Fprintf(os.Stderr, "test app: boot %d of this release waits %s (%s)\n", n, d, slowAfterFile)
			time.Sleep(d)
		}
	}
	if b, err := os.ReadFile(stallStartFile); err == nil {
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "test app:", stallStartFile, err)
			return 2
		}
		if start := startNumber("stall-starts-" + os.Getenv("PORT")); start == n {
			fmt.Fprintf(os.Stderr, "test app: start %d on port %s stalls (%s = %d)\n", start, os.Getenv("PORT"), stallStartFile, n)
			time.Sleep(time.Hour)
		}
	}
	if b, err := os.ReadFile(crashLoopFile); err == nil {
		if code := crashLoop(strings.TrimSpace(string(b))); code >= 0 {
			return code
		}
	}
	return demoapp.Main()
}

// crashLoop does what crashLoopFile asks of this start: it returns an exit
// status, or -1 to go on and serve.
func crashLoop(limit string) int {
	n, err := strconv.Atoi(limit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test app:", crashLoopFile, err)
		return 2
	}
	port := os.Getenv("PORT")
	if f, err := os.OpenFile("steady", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprint(f, port)
		f.Close()
	}
	if steady, _ := os.ReadFile("steady"); string(steady) == port {
		time.Sleep(steadyBootDelay)
		return -1
	}
	if err := os.MkdirAll("starts-"+port, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "test app:", err)
		return 2
	}
	ents, err := os.ReadDir("starts-" + port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test app:", err)
		return 2
	}
	start := len(ents) + 1
	if err := os.WriteFile(filepath.Join("starts-"+port, strconv.Itoa(start)), nil, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "test app:", err)
		return 2
	}
	if start <= n {
		fmt.Fprintf(os.Stderr, "test app: start %d on port %s crashes (%s = %d)\n", start, port, crashLoopFile, n)
		return 1
	}
	return -1
}

// bootNumber counts this boot among the boots of the release in the
// working directory: each boot claims the next free number with O_EXCL.
func bootNumber() int {
	return startNumber("boots")
}

// startNumber claims the next free number in directory dir with O_EXCL
// and returns it.
func startNumber(dir string) int {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "test app:", err)
		os.Exit(2)
	}
	for n := 1; ; n++ {
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return n
		}
		if !os.IsExist(err) {
			fmt.Fprintln(os.Stderr, "test app:", err)
			os.Exit(2)
		}
	}
}

// watchDrain waits for the drain file at path and copies it to
// drain-notice-<pid>.
func watchDrain(path string) {
	if path == "" {
		fmt.Fprintln(os.Stderr, "test app: no CUTOVER_DRAIN_FILE")
		return
	}
	for {
		if b, err := os.ReadFile(path); err == nil {
			// Written aside, then renamed: the test polls for the notice
			// and must never read it half-written.
			notice := fmt.Sprintf("drain-notice-%d", os.Getpid())
			if err := os.WriteFile(notice+".tmp", append([]byte(path+"\n"), b...), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "test app:", err)
			} else if err := os.Rename(notice+".tmp", notice); err != nil {
				fmt.Fprintln(os.Stderr, "test app:", err)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
