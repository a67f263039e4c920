package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cutover/cutover/internal/deploy"
)

// nobody is the unprivileged user that plays "any other local user".
const nobodyUID, nobodyGID = 65534, 65534

// TestSecretsUnreadableByOtherUsers deploys with a secret in [app.env] and
// one in a 0600 env_file, then, as another local user, tries to read every
// file under the data directory: none that it can read may hold a secret,
// or a bare hash of one. A data directory loosened to the modes an older
// cutover made (0755, 0644) is tightened again by the next daemon.
func TestSecretsUnreadableByOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	const apiKey, password = "sk_live_51HkTestApiKeyValue", "correct-horse-battery-staple-9"
	e := newEnv(t, settings{instances: 1, extraApp: `env_file = "app.env"
[app.env]
STRIPE_KEY = "` + apiKey + `"
`})
	if err := os.WriteFile(filepath.Join(e.dir, "app.env"), []byte("DB_PASSWORD="+password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Let the other user reach the data directory, as it could under /srv.
	if err := os.Chmod(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: e.release("v1", "")}); err != nil {
		t.Fatalf("deploy: %v\n%s", err, tail(e.daemonLog(), 30))
	}
	data := filepath.Join(e.dir, "data")
	secrets := []string{apiKey, password, bareHash(apiKey), bareHash(password)}

	// The test means something only if the secrets are on disk.
	if b, err := os.ReadFile(filepath.Join(data, "state.db")); err != nil {
		t.Fatal(err)
	} else if wal, _ := os.ReadFile(filepath.Join(data, "state.db-wal")); !bytes.Contains(append(b, wal...), []byte(apiKey)) {
		t.Fatalf("the secret is not in state.db: the test would prove nothing")
	}
	readableAsNobody(t, data, secrets)

	// An older cutover's modes, then a new start of the daemon (the
	// keeper, which holds the sockets, stays).
	e.downDaemon(func() {
		filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink != 0 || strings.Contains(p, "/releases/") && !strings.HasSuffix(p, ".cutover-release.json") {
				return nil
			}
			if d.IsDir() {
				return os.Chmod(p, 0o755)
			}
			return os.Chmod(p, 0o644)
		})
		if fi, _ := os.Stat(filepath.Join(data, "state.db")); fi.Mode().Perm() != 0o644 {
			t.Fatal("could not loosen the data dir")
		}
	})
	if !strings.Contains(e.daemonLog(), "tightened the mode") {
		t.Errorf("the daemon did not log what it tightened; log:\n%s", tail(e.daemonLog(), 30))
	}
	readableAsNobody(t, data, secrets)
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode after restart: %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func bareHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}

// readableAsNobody lists every file under dir (as root) and reads each as
// the nobody user; it fails the test if what nobody could read holds any of
// secrets.
func readableAsNobody(t *testing.T, dir string, secrets []string) {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 5 {
		t.Fatalf("only %d files under %s: %v", len(files), dir, files)
	}
	// One process as nobody reads them all: each readable file's path,
	// then its content.
	cmd := exec.Command("/bin/sh", append([]string{"-c", `for f in "$@"; do if cat "$f" >/dev/null 2>&1; then echo "READABLE $f"; cat "$f"; fi; done`, "sh"}, files...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyUID, Gid: nobodyGID}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read as nobody: %v", err)
	}
	var readable []string
	for _, line := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(line, "READABLE "); ok {
			readable = append(readable, p)
		}
	}
	for _, s := range secrets {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("another user read %q from the data dir; files it could read: %v", s, readable)
		}
	}
	t.Logf("%d files under the data dir, %d readable by another user", len(files), len(readable))
}
