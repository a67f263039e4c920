package release

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTrimLogs(t *testing.T) {
	data := t.TempDir()
	m, err := NewManager(data)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	write := func(rel string, size int, age int) string {
		p := filepath.Join(data, "logs", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		at := base.Add(-time.Duration(age) * time.Minute)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	open := write("r2/r2-1.log", 500, 9) // the oldest, but written to
	oldest := write("r1/r1-1.log", 300, 8)
	rotated := write("r2/r2-1.log.1", 300, 7)
	newest := write("r2/r2-2.log", 300, 1)

	got, err := m.TrimLogs(1000, map[string]bool{open: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(LogTrim{Removed: []string{oldest, rotated}, RemovedBytes: 600, Total: 800}, got); diff != "" {
		t.Errorf("TrimLogs (-want +got):\n%s", diff)
	}
	for _, p := range []string{open, newest} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	// Only the open file left and still over: nothing more to remove.
	got, err = m.TrimLogs(400, map[string]bool{open: true, newest: true})
	if err != nil || len(got.Removed) != 0 || got.Total != 800 {
		t.Errorf("TrimLogs with only open files: %+v, %v; want nothing removed, total 800", got, err)
	}
}
