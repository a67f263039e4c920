package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the app under supervision: with childModeEnv
// set, TestMain runs one of the child modes below instead of the tests.
const (
	childModeEnv = "CUTOVER_SUPERVISOR_TEST_CHILD"
	notifyEnv    = "CUTOVER_SUPERVISOR_TEST_NOTIFY" // loopback address to report "ready <pid> [<grandchild pid>]" to
	greetingEnv  = "CUTOVER_SUPERVISOR_TEST_GREETING"
	specEnv      = "CUTOVER_SUPERVISOR_TEST_SPEC" // JSON Spec for the "daemon" mode
)

// waitTimeout bounds every wait of these tests for a process to do
// something; it is a failure deadline, not a pacing delay.
const waitTimeout = 15 * time.Second

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		runChild(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childInfo is what an "http" child answers on /.
type childInfo struct {
	PID      int      `json:"pid"`
	Dir      string   `json:"dir"`
	Port     string   `json:"port"`
	Greeting string   `json:"greeting"`
	Env      []string `json:"env"`
}

func runChild(mode string) {
	switch mode {
	case "http":
		// Serves on $PORT; exits 0 on SIGTERM after saying so on stdout.
		ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(3)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			dir, _ := os.Getwd()
			_ = json.NewEncoder(w).Encode(childInfo{
				PID: os.Getpid(), Dir: dir, Port: os.Getenv("PORT"),
				Greeting: os.Getenv(greetingEnv), Env: os.Environ(),
			})
		})
		mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			out := os.Stdout
			if r.URL.Query().Get("stream") == "stderr" {
				out = os.Stderr
			}
			if _, err := out.WriteString(r.URL.Query().Get("text") + strings.Repeat("x", n)); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
		mux.HandleFunc("/flood", func(w http.ResponseWriter, r *http.Request) {
			// Writes n bytes to stdout in writes of chunk bytes (lines of
			// 'x' ending in '\n'), then the line "end <text>"; answers the
			// number of writes that failed.
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			chunk, _ := strconv.Atoi(r.URL.Query().Get("chunk"))
			line := []byte(strings.Repeat("x", chunk-1) + "\n")
			failed := 0
			for left := n; left > 0; left -= chunk {
				if _, err := os.Stdout.Write(line[:min(chunk, left)]); err != nil {
					failed++
				}
			}
			if _, err := fmt.Fprintf(os.Stdout, "end %s\n", r.URL.Query().Get("text")); err != nil {
				failed++
			}
			fmt.Fprint(w, failed)
		})
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() { _ = http.Serve(ln, mux) }()
		notify(fmt.Sprint("ready ", os.Getpid()))
		<-term
		fmt.Println("got TERM")
		os.Exit(0)
	case "daemon":
		// Plays cutover serve: starts the instance described in specEnv,
		// reports it, and waits to be killed.
		var spec Spec
		if err := json.Unmarshal([]byte(os.Getenv(specEnv)), &spec); err != nil {
			fmt.Fprintln(os.Stderr, "spec:", err)
			os.Exit(3)
		}
		inst, err := New(Options{}).Start(spec)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		st := inst.Status()
		notify(fmt.Sprint("ready ", st.PID, " ", st.StartTime, " ", st.Port))
		sleepForever()
	case "stubborn":
		// Ignores SIGTERM and has a child of its own in its process group.
		signal.Ignore(syscall.SIGTERM)
		gc := exec.Command("/bin/sh", "-c", "exec sleep 300")
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "start grandchild:", err)
			os.Exit(3)
		}
		notify(fmt.Sprint("ready ", os.Getpid(), " ", gc.Process.Pid))
		sleepForever()
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode", mode)
		os.Exit(2)
	}
}

// sleepForever blocks the child until it is killed. Not `select {}`: with
// no other goroutine, a pure-Go (CGO_ENABLED=0) binary would die of
// "all goroutines are asleep" at once.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func notify(msg string) {
	addr := os.Getenv(notifyEnv)
	if addr == "" {
		return
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notify:", err)
		os.Exit(3)
	}
	fmt.Fprintln(c, msg)
	_ = c.Close()
}

// notifier receives the children's "ready" reports.
type notifier struct {
	addr string
	msgs chan []string
}

func newNotifier(t *testing.T) *notifier {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &notifier{addr: ln.Addr().String(), msgs: make(chan []string, 64)}
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			_ = c.Close()
			select {
			case n.msgs <- strings.Fields(line):
			case <-quit:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(quit)
		_ = ln.Close()
		<-done
	})
	return n
}

// ready waits for the next "ready" report and returns its pids.
func (n *notifier) ready(t *testing.T) []int {
	t.Helper()
	select {
	case f := <-n.msgs:
		if len(f) < 2 || f[0] != "ready" {
			t.Fatalf("got report %q, want ready <pid>", f)
		}
		var pids []int
		for _, s := range f[1:] {
			pid, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("got report %q: %v", f, err)
			}
			pids = append(pids, pid)
		}
		return pids
	case <-time.After(waitTimeout):
		t.Fatalf("no ready report within %v", waitTimeout)
		return nil
	}
}

// recorder collects the statuses passed to Options.OnChange.
type recorder struct {
	mu   sync.Mutex
	list []Status
	next int // waitFor looks from here on
	wake chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) add(s Status) {
	r.mu.Lock()
	r.list = append(r.list, s)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitFor returns the first status, after those already returned, that
// matches pred.
func (r *recorder) waitFor(t *testing.T, what string, pred func(Status) bool) Status {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		r.mu.Lock()
		for r.next < len(r.list) {
			s := r.list[r.next]
			r.next++
			if pred(s) {
				r.mu.Unlock()
				return s
			}
		}
		seen := fmt.Sprint(r.list)
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("no status %s within %v; got %s", what, waitTimeout, seen)
		}
	}
}

// pids returns every pid and start time seen, for clean-up.
func (r *recorder) pids() map[int]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[int]uint64{}
	for _, s := range r.list {
		if s.PID > 0 {
			out[s.PID] = s.StartTime
		}
	}
	return out
}

// newSupervisor returns a Supervisor whose instances' process groups are
// all killed when the test ends, whatever it did.
func newSupervisor(t *testing.T, opts Options) (*Supervisor, *recorder) {
	t.Helper()
	rec := newRecorder()
	opts.OnChange = rec.add
	if opts.BackoffMin == 0 {
		opts.BackoffMin = 10 * time.Millisecond
	}
	s := New(opts)
	sups, _ := testSupervisors.LoadOrStore(t, &supervisorList{})
	sups.(*supervisorList).add(s)
	t.Cleanup(func() {
		testSupervisors.Delete(t)
		stopInstances(t, s)
		killAll(rec.pids())
	})
	return s, rec
}

// testSupervisors holds the supervisors each test made, by *testing.T, so
// that childSpec can stop their instances before its directory is removed.
var testSupervisors sync.Map

type supervisorList struct {
	mu   sync.Mutex
	sups []*Supervisor
}

func (l *supervisorList) add(s *Supervisor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sups = append(l.sups, s)
}

func (l *supervisorList) all() []*Supervisor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Supervisor(nil), l.sups...)
}

// stopInstances stops every instance of s, which also waits for their log
// writers to have written the last of their output.
func stopInstances(t *testing.T, s *Supervisor) {
	for _, i := range s.Instances() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		if err := i.Stop(ctx); err != nil && !errors.Is(err, ErrDetached) {
			t.Errorf("clean-up: %v", err)
		}
		cancel()
	}
}

// killAll kills the process groups of pids that are still the processes
// that started at the given times.
func killAll(pids map[int]uint64) {
	for pid, st := range pids {
		if identify(pid, st) == nil {
			_ = signalGroup(pid, syscall.SIGKILL) // clean-up of a failed test
		}
	}
}

// childSpec returns a spec that runs the test binary in mode, reporting to n.
func childSpec(t *testing.T, mode string, n *notifier) Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Registered after TempDir, so run before its removal: an instance
	// that crash-loops, or a log writer, would write into it meanwhile.
	t.Cleanup(func() {
		if l, ok := testSupervisors.Load(t); ok {
			for _, s := range l.(*supervisorList).all() {
				stopInstances(t, s)
			}
		}
	})
	return Spec{
		App:      "app",
		Release:  "r1",
		Instance: "r1-" + strings.ReplaceAll(t.Name(), "/", "-"),
		Dir:      dir,
		Command:  shellQuote(exe),
		Env: []string{
			childModeEnv + "=" + mode,
			notifyEnv + "=" + n.addr,
			greetingEnv + "=hello from cutover",
		},
		StopTimeout: waitTimeout,
		LogPath:     dir + "/logs/r1/instance.log",
	}
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// get fetches path from the instance on port and decodes its answer.
func get(t *testing.T, port int, path string) childInfo {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %q %v", path, resp.StatusCode, body, err)
	}
	var info childInfo
	if path == "/" {
		if err := json.Unmarshal(body, &info); err != nil {
			t.Fatalf("GET %s: %v in %q", path, err, body)
		}
	}
	return info
}

// pidfdOf opens a pidfd of pid, closed when the test ends.
func pidfdOf(t *testing.T, pid int) int {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd of %d: %v", pid, err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	return fd
}

// exitsWithin reports whether the process behind pidfd fd exits within d.
func exitsWithin(fd int, d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0
	}
}
