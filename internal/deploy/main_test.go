package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// recordNiceFile, in a release, makes each instance write the nice value it
// starts at to boot-nice-<pid> in the release directory.
const recordNiceFile = "record-nice"

// watchDrainFile, in a release, makes each instance watch for its drain
// file (CUTOVER_DRAIN_FILE) and, once it appears, copy it to
// drain-notice-<pid> in the release directory, as an app would act on it.
const watchDrainFile = "watch-drain"

func TestMain(m *testing.M) {
	if os.Getenv(appEnv) == "1" {
		os.Exit(runApp())
	}
	os.Exit(m.Run())
}

func runApp() int {
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
	return demoapp.Main()
}

// bootNumber counts this boot among the boots of the release in the
// working directory: each boot claims the next free number with O_EXCL.
func bootNumber() int {
	if err := os.MkdirAll("boots", 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "test app:", err)
		os.Exit(2)
	}
	for n := 1; ; n++ {
		f, err := os.OpenFile(filepath.Join("boots", strconv.Itoa(n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
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
			notice := fmt.Sprintf("drain-notice-%d", os.Getpid())
			if err := os.WriteFile(notice, append([]byte(path+"\n"), b...), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "test app:", err)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
