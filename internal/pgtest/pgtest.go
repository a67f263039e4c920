// Package pgtest starts a throwaway PostgreSQL cluster for tests: initdb
// into a temporary directory, postgres on a free 127.0.0.1 port and a unix
// socket in that directory, fsync off. One cluster serves a whole test
// package; each test gets its own database from CreateDB.
//
// A package using it calls Main from TestMain, which stops the cluster and
// removes its directory after the tests:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// When the PostgreSQL binaries are missing, Start skips the test, or fails
// it when the environment variable CI is "true", so CI cannot silently run
// without the database tests.
//
// When the tests run as root, initdb and postgres run as the "postgres" OS
// user, which PostgreSQL requires.
package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/internal/freeport"
)

// startTimeout bounds initdb plus postgres becoming ready.
const startTimeout = 60 * time.Second

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir  string // temporary directory: data/, socket, log
	port int
	cmd  *exec.Cmd
	// exited is closed when the postgres process has exited and its
	// output reader finished.
	exited chan struct{}
	log    *lockedBuffer
	dbs    atomic.Int64
}

var (
	mu          sync.Mutex
	mainCalled  bool
	shared      *Cluster
	startErr    error
	unavailable string // why the binaries cannot be used; the test skips
)

// Main runs the tests of m, then stops the package's cluster (if a test
// started one) and exits with the tests' code. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit, for a TestMain that has more to clean up:
// it returns the code to exit with.
func Run(m *testing.M) int {
	mu.Lock()
	mainCalled = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	c := shared
	shared = nil
	mu.Unlock()
	if c != nil {
		if err := c.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Start returns the package's cluster, starting it on first use.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !mainCalled {
		tb.Fatal("pgtest: call pgtest.Main(m) from TestMain, so the cluster is stopped after the tests")
	}
	if shared == nil && startErr == nil && unavailable == "" {
		shared, startErr = start()
	}
	if unavailable != "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("pgtest: PostgreSQL is required in CI: %s", unavailable)
		}
		tb.Skipf("pgtest: PostgreSQL not available: %s", unavailable)
	}
	if startErr != nil {
		tb.Fatalf("pgtest: %v", startErr)
	}
	return shared
}

// URL returns the URL of the cluster's "postgres" database.
func (c *Cluster) URL() string { return c.urlFor("postgres") }

func (c *Cluster) urlFor(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Port returns the TCP port the cluster listens on (127.0.0.1).
func (c *Cluster) Port() int { return c.port }

var notIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// CreateDB creates a fresh database for the test, named after name, and
// returns its URL. The database is dropped when the test ends.
func (c *Cluster) CreateDB(tb testing.TB, name string) string {
	tb.Helper()
	name = notIdent.ReplaceAllString(strings.ToLower(name), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	db := fmt.Sprintf("t%d_%s", c.dbs.Add(1), name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.exec(ctx, fmt.Sprintf(`CREATE DATABASE %q`, db)); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", db, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, db)); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", db, err)
		}
	})
	return c.urlFor(db)
}

func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// binDir finds the directory holding initdb and postgres: beside initdb
// from PATH (following symlinks, so both come from one installation), else
// the newest /usr/lib/postgresql/*/bin.
func binDir() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // The pattern is valid.
	slices.SortFunc(found, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a))) // Non-numeric sorts as 0.
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	dirs = append(dirs, found...)
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("no initdb and postgres found in PATH or /usr/lib/postgresql/*/bin")
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// credential returns the credential to run PostgreSQL with: the postgres
// user when we are root (PostgreSQL refuses to run as root), else nil.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as another user, and there is no \"postgres\" user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres user ids: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// start runs initdb and postgres. It is called with mu held.
func start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		unavailable = err.Error()
		return nil, nil
	}
	cred, err := credential()
	if err != nil {
		unavailable = err.Error()
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "cutover-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	c := &Cluster{dir: dir, exited: make(chan struct{}), log: &lockedBuffer{}}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir) // Best effort; the start error matters.
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(fmt.Errorf("chown %s to postgres: %w", dir, err))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	c.port, err = freeport.Pick()
	if err != nil {
		return fail(err)
	}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(c.port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	c.cmd.Dir = dir
	// Pdeathsig: if the test binary dies without cleanup, the server
	// must not outlive it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	out, err := c.cmd.StderrPipe()
	if err != nil {
		return fail(fmt.Errorf("postgres stderr: %w", err))
	}
	c.cmd.Stdout = c.log
	if err := c.cmd.Start(); err != nil {
		return fail(fmt.Errorf("start postgres: %w", err))
	}
	ready := make(chan struct{})
	go c.readLog(out, ready)
	select {
	case <-ready:
	case <-c.exited:
		c.cmd.Wait() // Reaps the process; its log says why it stopped.
		return fail(fmt.Errorf("postgres exited during startup:\n%s", c.log.String()))
	case <-ctx.Done():
		c.stop() // The timeout is the error to report.
		return nil, fmt.Errorf("postgres not ready after %s:\n%s", startTimeout, c.log.String())
	}
	return c, nil
}

// readLog copies postgres' output into the log, closes ready once the
// server accepts connections, and closes exited at EOF.
func (c *Cluster) readLog(r io.Reader, ready chan struct{}) {
	defer close(c.exited)
	sc := bufio.NewScanner(r)
	isReady := false
	for sc.Scan() {
		line := sc.Text()
		c.log.WriteString(line + "\n")
		if !isReady && strings.Contains(line, "database system is ready to accept connections") {
			isReady = true
			close(ready)
		}
	}
}

// stop shuts postgres down (fast shutdown, then kill) and removes the
// directory.
func (c *Cluster) stop() error {
	var errs []error
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGINT) // Fast shutdown; a kill follows if it does not stop.
		select {
		case <-c.exited:
		case <-time.After(20 * time.Second):
			c.cmd.Process.Kill() // Last resort; Wait reports the outcome.
			<-c.exited
		}
		c.cmd.Wait() // Exit status of a signalled server is not an error here.
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", c.dir, err))
	}
	return errors.Join(errs...)
}

// lockedBuffer is the server's log, written by its reader goroutine and
// read on failure.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
