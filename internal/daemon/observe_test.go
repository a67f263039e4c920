package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestObserveServersCloseIdleConnections: the dashboard's and /metrics'
// servers close a keep-alive connection idle for proxy.idle_timeout, as
// the proxy does: without it, a client that made one request could hold
// its connection, and the daemon's file descriptor, for ever.
func TestObserveServersCloseIdleConnections(t *testing.T) {
	root := t.TempDir()
	cfg := writeConfig(t, root)
	cfg.Proxy.IdleTimeout.Duration = 300 * time.Millisecond
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.Dashboard.Listen = "127.0.0.1:0"
	log := slog.New(slog.DiscardHandler)
	obs, err := openObserver(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.close(context.Background())
	errc := make(chan error, 1)
	obs.serveMetrics(nil, nil, errc)
	dash, err := openDashboard(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer dash.close(context.Background())
	dash.serve(nil, "")
	for _, c := range []struct{ name, addr, path string }{
		{"metrics", obs.ln.Addr().String(), "/metrics"},
		{"dashboard", dash.ln.Addr().String(), "/static/dashboard.css"},
	} {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", c.path, c.addr)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET %s: %s", c.name, c.path, resp.Status)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s: a keep-alive connection idle for 5 s, over proxy.idle_timeout (%v): read gives %v, want EOF (closed)", c.name, cfg.Proxy.IdleTimeout.Duration, err)
		}
	}
}
