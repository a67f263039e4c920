package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testRepo is a git repository made for a test: tags v1 (lightweight) and
// v2 (annotated) on main, and a branch feature/x one commit past v2.
type testRepo struct {
	dir                      string
	v1, v2, feature, mainSHA string
}

// isolateGit keeps the user's and the system's git configuration out of
// the test.
func isolateGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(home, "gitconfig"))
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{
		"-c", "user.name=Test", "-c", "user.email=test@example.com",
		"-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
	}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func commitFile(t *testing.T, dir, name, body, msg string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", name)
	git(t, dir, "commit", "-q", "-m", msg)
	return git(t, dir, "rev-parse", "HEAD")
}

func newTestRepo(t *testing.T) testRepo {
	t.Helper()
	isolateGit(t)
	r := testRepo{dir: filepath.Join(t.TempDir(), "app")}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, r.dir, "init", "-q")
	r.v1 = commitFile(t, r.dir, "VERSION", "v1\n", "v1")
	git(t, r.dir, "tag", "v1")
	r.v2 = commitFile(t, r.dir, "VERSION", "v2\n", "v2")
	git(t, r.dir, "tag", "-a", "-m", "release v2", "v2")
	git(t, r.dir, "checkout", "-q", "-b", "feature/x")
	r.feature = commitFile(t, r.dir, "VERSION", "feature\n", "feature")
	git(t, r.dir, "checkout", "-q", "main")
	r.mainSHA = r.v2
	return r
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertNoReleases fails if anything, finished or half-made, is in releases/.
func assertNoReleases(t *testing.T, m *Manager) {
	t.Helper()
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("releases/ holds %s after a failed prepare", e.Name())
	}
}

func TestPrepareGitRefs(t *testing.T) {
	r := newTestRepo(t)
	t.Setenv("SUDO_USER", "")
	t.Setenv("USER", "deployer")
	tests := []struct {
		ref, wantSuffix, wantVersion, wantCommit string
	}{
		{"v1", "-v1", "v1\n", r.v1},
		{"v2", "-v2", "v2\n", r.v2},
		{"refs/tags/v2", "-v2", "v2\n", r.v2},
		{"main", "-main", "v2\n", r.mainSHA},
		{"feature/x", "-feature-x", "feature\n", r.feature},
		{"refs/heads/feature/x", "-feature-x", "feature\n", r.feature},
		{r.v1, "-" + r.v1, "v1\n", r.v1},
		{r.feature[:10], "-" + r.feature[:10], "feature\n", r.feature},
	}
	m := newManager(t)
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			id, meta, err := m.PrepareGit(context.Background(), GitOptions{Repo: r.dir, Ref: tt.ref})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(id, tt.wantSuffix) {
				t.Errorf("id = %q, want suffix %q", id, tt.wantSuffix)
			}
			if got := readFile(t, filepath.Join(m.Dir(id), "VERSION")); got != tt.wantVersion {
				t.Errorf("VERSION = %q, want %q", got, tt.wantVersion)
			}
			if meta.Commit != tt.wantCommit {
				t.Errorf("Commit = %q, want %q", meta.Commit, tt.wantCommit)
			}
			if meta.Source != SourceGit || meta.Repo != r.dir || meta.Ref != tt.ref || meta.CreatedBy != "deployer" {
				t.Errorf("meta = %+v, want git source of %s at %s by deployer", meta, r.dir, tt.ref)
			}
			if _, err := os.Stat(filepath.Join(m.Dir(id), ".git")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf(".git in the release: stat = %v, want not exist", err)
			}
			var stored Meta
			if err := ReadMeta(m.Dir(id), &stored); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(meta, stored); diff != "" {
				t.Errorf("stored meta differs (-returned +stored):\n%s", diff)
			}
		})
	}
}

func TestPrepareGitIDSortsByTime(t *testing.T) {
	r := newTestRepo(t)
	m := newManager(t)
	id, _, err := m.PrepareGit(context.Background(), GitOptions{Repo: r.dir, Ref: "refs/tags/v2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "20261122T093501-v2"; id != want {
		t.Errorf("id = %q, want %q", id, want)
	}
}

func TestPrepareGitUnknownRef(t *testing.T) {
	r := newTestRepo(t)
	m := newManager(t)
	_, _, err := m.PrepareGit(context.Background(), GitOptions{Repo: r.dir, Ref: "v9"})
	if !errors.Is(err, ErrRefNotFound) {
		t.Fatalf("PrepareGit(v9) = %v, want ErrRefNotFound", err)
	}
	if !strings.Contains(err.Error(), `"v9"`) || !strings.Contains(err.Error(), r.dir) {
		t.Errorf("error %q does not name the ref and the repository", err)
	}
	assertNoReleases(t, m)
}

func TestPrepareGitUnknownRepo(t *testing.T) {
	isolateGit(t)
	m := newManager(t)
	repo := filepath.Join(t.TempDir(), "no-such-repo")
	_, _, err := m.PrepareGit(context.Background(), GitOptions{Repo: repo, Ref: "v1"})
	if err == nil || !strings.Contains(err.Error(), "clone git repository "+repo) {
		t.Fatalf("PrepareGit(missing repo) = %v, want an error naming %s", err, repo)
	}
	assertNoReleases(t, m)
}

func TestPrepareGitFailingTest(t *testing.T) {
	r := newTestRepo(t)
	m := newManager(t)
	_, _, err := m.PrepareGit(context.Background(), GitOptions{
		Repo:  r.dir,
		Ref:   "v2",
		Test:  "echo checking; echo 'FAIL: TestLogin' >&2; exit 3",
		Build: "touch built",
	})
	var cerr *CommandError
	if !errors.As(err, &cerr) {
		t.Fatalf("PrepareGit = %v, want a *CommandError", err)
	}
	if cerr.Stage != StreamTest || cerr.ExitCode != 3 {
		t.Errorf("got stage %q exit %d, want %q exit 3", cerr.Stage, cerr.ExitCode, StreamTest)
	}
	if diff := cmp.Diff([]string{"checking", "FAIL: TestLogin"}, cerr.Tail); diff != "" {
		t.Errorf("tail mismatch (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), `test command "echo checking; echo 'FAIL: TestLogin' >&2; exit 3" failed with exit code 3`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	assertNoReleases(t, m)
}

func TestPrepareGitTailKeepsLastLines(t *testing.T) {
	r := newTestRepo(t)
	m := newManager(t)
	_, _, err := m.PrepareGit(context.Background(), GitOptions{
		Repo: r.dir, Ref: "v1",
		Build: "i=1; while [ $i -le 50 ]; do echo line$i; i=$((i+1)); done; exit 1",
	})
	var cerr *CommandError
	if !errors.As(err, &cerr) {
		t.Fatalf("PrepareGit = %v, want a *CommandError", err)
	}
	var want []string
	for i := 21; i <= 50; i++ {
		want = append(want, fmt.Sprintf("line%d", i))
	}
	if cerr.Stage != StreamBuild || cerr.ExitCode != 1 {
		t.Errorf("got stage %q exit %d, want %q exit 1", cerr.Stage, cerr.ExitCode, StreamBuild)
	}
	if diff := cmp.Diff(want, cerr.Tail); diff != "" {
		t.Errorf("tail mismatch (-want +got):\n%s", diff)
	}
	assertNoReleases(t, m)
}

func TestPrepareGitTestAndBuild(t *testing.T) {
	r := newTestRepo(t)
	m := newManager(t)
	type line struct{ stream, text string }
	var got []line
	id, _, err := m.PrepareGit(context.Background(), GitOptions{
		Repo:  r.dir,
		Ref:   "v2",
		Test:  `echo "testing $CUTOVER_GIT_REF with $MODE"; git describe --tags >&2`,
		Build: "mkdir -p out && cat VERSION > out/app && echo built",
		Env:   []string{"MODE=strict"},
		Output: func(stream, text string) {
			got = append(got, line{stream, text})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(m.Dir(id), "out", "app")); got != "v2\n" {
		t.Errorf("build artefact out/app = %q, want %q", got, "v2\n")
	}
	var sawGit bool
	var rest []line
	for _, l := range got {
		if l.stream == StreamGit {
			sawGit = true
			if len(rest) > 0 {
				t.Errorf("git output %q after the test started", l.text)
			}
			continue
		}
		rest = append(rest, l)
	}
	if !sawGit {
		t.Errorf("no git output streamed")
	}
	want := []line{
		{StreamTest, "testing v2 with strict"},
		{StreamTest, "v2"},
		{StreamBuild, "built"},
	}
	if diff := cmp.Diff(want, rest, cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("output mismatch (-want +got):\n%s", diff)
	}
}

// TestPrepareGitKillsLeftovers checks that a test which leaves a process
// behind does not hold the prepare up: PrepareGit can only return once
// every writer of the output pipe is gone.
func TestPrepareGitKillsLeftovers(t *testing.T) {
	r := newTestRepo(t)
	m := newManager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := m.PrepareGit(ctx, GitOptions{Repo: r.dir, Ref: "v1", Test: "sleep 300 & echo started"})
	if err != nil {
		t.Fatalf("PrepareGit = %v, want success once the leftover sleep is killed", err)
	}
}

// TestPrepareGitCancelKillsGroup cancels a running test and checks that
// the process it started in the background dies with it: the fifo it holds
// open reaches EOF only when that process is gone.
func TestPrepareGitCancelKillsGroup(t *testing.T) {
	r := newTestRepo(t)
	m := newManager(t)
	fifo := filepath.Join(t.TempDir(), "held")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	gone := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_RDONLY, 0) // blocks until the writer opens it
		if err != nil {
			gone <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		gone <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, err := m.PrepareGit(ctx, GitOptions{
		Repo: r.dir, Ref: "v1",
		Env: []string{"FIFO=" + fifo},
		// The fifo is open (in the shell, and so in sleep) before
		// "started" is printed.
		Test: `exec 3>"$FIFO"; sleep 300 & echo started; wait`,
		Output: func(stream, line string) {
			if stream == StreamTest && line == "started" {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("PrepareGit = %v, want context.Canceled", err)
	}
	select {
	case err := <-gone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the background process of a cancelled test is still running")
	}
	assertNoReleases(t, m)
}

func TestRefLabel(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"v1.4.2", "v1.4.2"},
		{"refs/tags/v1.4.2", "v1.4.2"},
		{"refs/heads/feature/login", "feature-login"},
		{"feature/login", "feature-login"},
		{"HEAD~1", "HEAD-1"},
		{"///", "git"},
	}
	for _, tt := range tests {
		if got := refLabel(tt.ref); got != tt.want {
			t.Errorf("refLabel(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}
