package daemon

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsAddressTaken: a metrics.listen another process holds (not
// with SO_REUSEPORT) stops the daemon at start, naming the key and the
// file.
func TestMetricsAddressTaken(t *testing.T) {
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := writeConfig(t, root)
	cfg.Metrics.Listen = ln.Addr().String()
	err = Run(context.Background(), Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	want := "metrics listen on " + ln.Addr().String() + " (metrics.listen in " + cfg.Path + "): "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("got %v, want %q and the cause", err, want)
	}
}

// TestAccessLogDirMissing: an access log that cannot be opened stops the
// daemon at start and says what to do.
func TestAccessLogDirMissing(t *testing.T) {
	root, err := os.MkdirTemp("", "cutover-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := writeConfig(t, root)
	cfg.Log.Access = filepath.Join(root, "missing", "access.log")
	err = Run(context.Background(), Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "log.access in "+cfg.Path) || !strings.Contains(err.Error(), "make its directory") {
		t.Errorf("got %v, want the access log's error naming log.access and the fix", err)
	}
}

// TestMetricsPortSharedWithNextDaemon: the metrics socket is bound with
// SO_REUSEPORT, so a second observer (the next daemon of an upgrade)
// binds it while the first still holds it.
func TestMetricsPortSharedWithNextDaemon(t *testing.T) {
	root := t.TempDir()
	cfg := writeConfig(t, root)
	cfg.Metrics.Listen = "127.0.0.1:0"
	first, err := openObserver(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer first.close(context.Background())
	cfg.Metrics.Listen = first.ln.Addr().String()
	second, err := openObserver(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("second daemon's metrics listener: %v", err)
	}
	second.close(context.Background())
}
