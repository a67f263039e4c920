package supervisor

import (
	"bytes"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitLog waits until the log at path holds want, and returns it.
func waitLog(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s: %q did not appear within %v; got %d bytes ending %q (err %v)", path, want, waitTimeout, len(b), tailOf(b, 200), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tailOf(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// flood asks the instance on port to write n bytes in writes of chunk,
// then "end <text>"; it returns how many of its writes failed.
func flood(t *testing.T, port, n, chunk int, text string) int {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/flood?n=" + strconv.Itoa(n) + "&chunk=" + strconv.Itoa(chunk) + "&text=" + text)
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	failed, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatalf("flood: %d %q", resp.StatusCode, b)
	}
	return failed
}

func TestLogWrittenOwnerOnly(t *testing.T) {
	n := newNotifier(t)
	s, _ := newSupervisor(t, Options{})
	spec := childSpec(t, "http", n)
	spec.LogMaxSize = 1000
	inst, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	n.ready(t)
	port := inst.Spec().Port
	get(t, port, "/write?text=from-stdout&n=30")
	get(t, port, "/write?stream=stderr&text=from-stderr&n=20")
	waitLog(t, spec.LogPath, "from-stdout")
	waitLog(t, spec.LogPath, "from-stderr")
	for path, want := range map[string]fs.FileMode{spec.LogPath: 0o600, filepath.Dir(spec.LogPath): 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %#o", path, fi.Mode().Perm(), err, want)
		}
	}
}

// TestLogCapHeldUnderFastWriter: an app that writes as fast as it can
// never finds its log file larger than the cap — the cap is enforced as
// the bytes are written, not by a periodic check — and nothing it wrote
// last is lost.
func TestLogCapHeldUnderFastWriter(t *testing.T) {
	const limit = 256 << 10
	n := newNotifier(t)
	s, _ := newSupervisor(t, Options{})
	spec := childSpec(t, "http", n)
	spec.LogMaxSize = limit
	inst, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	n.ready(t)
	port := inst.Spec().Port

	stop := make(chan struct{})
	biggest := make(chan int64)
	go func() {
		var max int64
		for {
			select {
			case <-stop:
				biggest <- max
				return
			default:
			}
			for _, p := range []string{spec.LogPath, spec.LogPath + ".1"} {
				if fi, err := os.Stat(p); err == nil && fi.Size() > max {
					max = fi.Size()
				}
			}
		}
	}()
	start := time.Now()
	if failed := flood(t, port, 40<<20, 4096, "of-flood"); failed != 0 {
		t.Errorf("%d writes of the app failed", failed)
	}
	waitLog(t, spec.LogPath, "end of-flood")
	elapsed := time.Since(start)
	close(stop)
	if max := <-biggest; max > limit {
		t.Errorf("a log file reached %d bytes; the cap is %d", max, limit)
	}
	for _, p := range []string{spec.LogPath, spec.LogPath + ".1"} {
		if got := fileSize(t, p); got > limit {
			t.Errorf("%s: %d bytes, over the cap of %d", p, got, limit)
		}
	}
	t.Logf("40 MiB written in %v", elapsed)
}

// TestLogFullDisk: on a full file system the app's output is dropped, not
// blocked: the app goes on (no crash, no failed write) and the daemon too;
// once there is room again, the log says how much was dropped.
func TestLogFullDisk(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	n := newNotifier(t)
	s, _ := newSupervisor(t, Options{})
	spec := childSpec(t, "http", n)
	spec.LogPath = filepath.Join(mnt, "r1", "instance.log")
	spec.LogMaxSize = 0 // the disk is the limit
	inst, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	n.ready(t)
	port := inst.Spec().Port
	if failed := flood(t, port, 4<<20, 4096, "too-much"); failed != 0 {
		t.Errorf("%d writes of the app failed on a full disk; want none (dropped by the log writer)", failed)
	}
	// The app still serves, and was never restarted.
	get(t, port, "/")
	if st := inst.Status(); st.State != Running || st.Restarts != 0 {
		t.Fatalf("instance after filling the disk: %+v; want running, no restart", st)
	}
	if got := fileSize(t, spec.LogPath); got > 1<<20 {
		t.Fatalf("log of %d bytes on a 1 MiB file system", got)
	}
	// The last 5% are left for the daemon's state.
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if free, size := int64(st.Bavail)*st.Bsize, int64(st.Blocks)*st.Bsize; free < size/20 {
		t.Errorf("%d bytes free of %d after the flood; want at least 5%% left for the daemon's state", free, size)
	}

	// Room again: the next output is written, after a note of the loss.
	if err := os.Truncate(spec.LogPath, 0); err != nil {
		t.Fatal(err)
	}
	// Writing is tried again once a second: what comes before is dropped.
	var log string
	for deadline := time.Now().Add(waitTimeout); ; {
		get(t, port, "/write?text=room-again&n=1")
		if b, _ := os.ReadFile(spec.LogPath); strings.Contains(string(b), "room-again") {
			log = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing written within %v of the disk having room", waitTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(log, "bytes of this instance's output were dropped: the file system is nearly full") {
		t.Errorf("log after the disk had room again: %q; want a note of the dropped bytes and why", log)
	}
	if st := inst.Status(); st.State != Running || st.Restarts != 0 {
		t.Errorf("instance at the end: %+v; want running, no restart", st)
	}
}

// TestLogWriterReportsOnce: a run of failed writes is reported once, and
// its end once, with the bytes dropped.
func TestLogWriterReportsOnce(t *testing.T) {
	dir := t.TempDir()
	var report bytes.Buffer
	w := newLogWriter(filepath.Join(dir, "a.log"), 0, slog.New(slog.NewTextHandler(&report, nil)))
	now := time.Now()
	w.now = func() time.Time { return now }
	w.write([]byte("one\n"))
	// The file can no longer be written: a read-only descriptor stands in
	// for a full disk.
	ro, err := os.Open(w.path)
	if err != nil {
		t.Fatal(err)
	}
	good := w.f
	w.f = ro
	for range 3 {
		w.write([]byte("lost\n")) // the first fails, the others wait for the retry
	}
	now = now.Add(time.Second)
	w.write([]byte("lost\n")) // the retry fails
	if w.dropped != 20 {
		t.Errorf("dropped = %d, want 20", w.dropped)
	}
	w.f = good
	ro.Close()
	w.write([]byte("not yet\n")) // within a second of the failed retry: dropped
	now = now.Add(time.Second)
	w.write([]byte("two\n"))
	w.finish()
	b, _ := os.ReadFile(w.path)
	if got, want := string(b), "one\ncutover: 28 bytes of this instance's output were dropped: "; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "two\n") {
		t.Errorf("log = %q, want %q… then two", got, want)
	}
	if got := strings.Count(report.String(), "cannot be written"); got != 1 {
		t.Errorf("failure reported %d times, want once:\n%s", got, report.String())
	}
	if got := strings.Count(report.String(), "written again"); got != 1 || !strings.Contains(report.String(), "dropped_bytes=28") {
		t.Errorf("recovery reported %d times, want once with dropped_bytes=28:\n%s", got, report.String())
	}
}

// The note of a loss goes before the next chunk without taking the file
// past the cap, even with the smallest cap: chunks leave room for it.
func TestLogWriterNoteWithinCap(t *testing.T) {
	const limit = 4096
	w := newLogWriter(filepath.Join(t.TempDir(), "a.log"), limit, slog.New(slog.DiscardHandler))
	now := time.Now()
	w.now = func() time.Time { return now }
	var in bytes.Buffer
	in.Write(bytes.Repeat([]byte("y"), 3*limit))
	if err := w.copy(&in); err != nil { // read as chunks of at most limit-noteRoom
		t.Fatal(err)
	}
	// 12288 bytes in chunks of 3840: the last two chunks are kept.
	if got, got1 := fileSize(t, w.path), fileSize(t, w.path+".1"); got != 768 || got1 != limit-noteRoom {
		t.Fatalf("log of %d bytes and .1 of %d after 3 caps' worth; want 768 and %d", got, got1, limit-noteRoom)
	}
	if err := os.Truncate(w.path, 0); err != nil {
		t.Fatal(err)
	}
	w.size = 0
	w.open()
	good := w.f
	ro, err := os.Open(w.path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	w.f = ro
	chunk := bytes.Repeat([]byte("z"), limit-noteRoom)
	w.write(chunk) // fails
	w.f = good
	now = now.Add(time.Second)
	w.write(chunk) // the note and the chunk
	w.finish()
	b, _ := os.ReadFile(w.path)
	if len(b) > limit || !strings.HasPrefix(string(b), "cutover: 3840 bytes of this instance's output were dropped: write: bad file descriptor\nzzz") {
		t.Errorf("log of %d bytes (cap %d) starting %.100q", len(b), limit, b)
	}
}
