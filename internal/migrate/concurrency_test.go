package migrate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConcurrentRunners(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		set := load(t, writeFiles(t, t.TempDir(), manyMigrations(8)))
		var wg sync.WaitGroup
		results := make([]Result, 5)
		errs := make([]error, 5)
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := Open(context.Background(), Options{URL: b.url, Release: fmt.Sprintf("runner-%d", i)})
				if err != nil {
					errs[i] = err
					return
				}
				defer r.Close()
				results[i], errs[i] = r.Up(context.Background(), set, Expand, nil)
			}()
		}
		wg.Wait()
		total := 0
		for i := range 5 {
			if errs[i] != nil {
				t.Errorf("runner %d: %v", i, errs[i])
			}
			total += len(results[i].Done)
		}
		if total != 8 {
			t.Errorf("migrations applied across runners: got %d, want 8", total)
		}
		checkManyApplied(t, open(t, b.url), 8)
	})
}

// manyMigrations returns n native migrations; each creates a table and
// inserts one row into a shared counter table, so running one twice shows.
func manyMigrations(n int) map[string]string {
	files := map[string]string{
		"1-runs.up.sql":   "CREATE TABLE runs (id integer NOT NULL);",
		"1-runs.down.sql": "DROP TABLE runs;",
	}
	for i := 2; i <= n; i++ {
		files[fmt.Sprintf("%d-t%d.up.sql", i, i)] = fmt.Sprintf("CREATE TABLE t%d (x integer);\nINSERT INTO runs (id) VALUES (%d);", i, i)
		files[fmt.Sprintf("%d-t%d.down.sql", i, i)] = fmt.Sprintf("DROP TABLE t%d;\nDELETE FROM runs WHERE id = %d;", i, i)
	}
	return files
}

func checkManyApplied(t *testing.T, r *Runner, n int) {
	t.Helper()
	want := make([]Version, n)
	for i := range want {
		want[i] = VersionOf(uint64(i + 1))
	}
	if diff := cmp.Diff(want, appliedIDs(t, r)); diff != "" {
		t.Errorf("version table ids (-want +got):\n%s", diff)
	}
	var runs, distinct int
	if err := r.conn.QueryRowContext(context.Background(), `SELECT count(*), count(DISTINCT id) FROM runs`).Scan(&runs, &distinct); err != nil {
		t.Fatalf("count runs: %v", err)
	}
	if runs != n-1 || distinct != n-1 {
		t.Errorf("rows in runs: got %d (%d distinct), want %d: a migration ran twice or not at all", runs, distinct, n-1)
	}
	for i := 2; i <= n; i++ {
		if !hasTable(t, r, fmt.Sprintf("t%d", i)) {
			t.Errorf("table t%d missing", i)
		}
	}
}

const (
	childURLEnv = "CUTOVER_MIGRATE_TEST_CHILD_URL"
	childDirEnv = "CUTOVER_MIGRATE_TEST_CHILD_DIR"
)

// runChildIfAsked runs one "migrate up" as a child process of
// TestConcurrentProcesses and exits; it returns false in a normal test run.
func runChildIfAsked() bool {
	url := os.Getenv(childURLEnv)
	if url == "" {
		return false
	}
	err := func() error {
		set, err := LoadDir(os.Getenv(childDirEnv), FormatAuto)
		if err != nil {
			return err
		}
		r, err := Open(context.Background(), Options{URL: url, Release: fmt.Sprintf("child-%d", os.Getpid())})
		if err != nil {
			return err
		}
		defer r.Close()
		res, err := r.Up(context.Background(), set, Expand, nil)
		fmt.Printf("applied %d\n", len(res.Done))
		return err
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

func TestConcurrentProcesses(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		dir := writeFiles(t, t.TempDir(), manyMigrations(6))
		cmds := make([]*exec.Cmd, 5)
		outs := make([]*strings.Builder, 5)
		for i := range cmds {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childURLEnv+"="+b.url, childDirEnv+"="+dir)
			outs[i] = &strings.Builder{}
			cmd.Stdout, cmd.Stderr = outs[i], outs[i]
			if err := cmd.Start(); err != nil {
				t.Fatalf("start child %d: %v", i, err)
			}
			t.Cleanup(func() { cmd.Process.Kill() }) // Already exited after Wait; the error is moot.
			cmds[i] = cmd
		}
		total := 0
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("child %d: %v\n%s", i, err, outs[i])
				continue
			}
			var n int
			if _, err := fmt.Sscanf(outs[i].String(), "applied %d", &n); err != nil {
				t.Errorf("child %d output %q: %v", i, outs[i], err)
			}
			total += n
		}
		if total != 6 {
			t.Errorf("migrations applied across processes: got %d, want 6", total)
		}
		checkManyApplied(t, open(t, b.url), 6)
	})
}
