package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
)

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStopLogsTheAppStopped: after `cutover stop` the daemon's last words
// say the app was stopped, not that its instances keep running for the
// next daemon (which they do after a plain SIGTERM only).
func TestStopLogsTheAppStopped(t *testing.T) {
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := writeConfig(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	var logs syncBuffer
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Ready: func(addr string) { ready <- addr }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon exited at start: %v", err)
	}
	client := api.NewClient(cfg.SocketPath())
	src := filepath.Join(root, "src", "v1")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "VERSION"), []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Deploy(ctx, deploy.Request{Source: src}, nil); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if err := client.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after stop: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("daemon did not exit after stop")
	}
	out := logs.String()
	if strings.Contains(out, "keep running") {
		t.Errorf("after `cutover stop` the log says instances keep running:\n%s", out)
	}
	if !strings.Contains(out, "the app's instances are stopped") {
		t.Errorf("after `cutover stop` the log does not say the app was stopped:\n%s", out)
	}
}
