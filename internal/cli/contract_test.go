package cli

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover/cutover/internal/config"
)

// TestContractSafeAsksTheDaemonOfSeveralApps: `cutover --app shop migrate
// contract` must ask the daemon (on <data_dir>/cutover.sock) whether an
// old release of shop still runs, not skip the check because the app's
// view of the file names a socket under <data_dir>/apps/shop.
func TestContractSafeAsksTheDaemonOfSeveralApps(t *testing.T) {
	root, err := os.MkdirTemp("", "cr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	path := filepath.Join(root, "cutover.toml")
	body := "data_dir = \"d\"\n[proxy]\nlisten = \"127.0.0.1:0\"\n" +
		"[apps.shop]\ncommand = \"./shop\"\nhosts = [\"shop.example.com\"]\n[apps.blog]\ncommand = \"./blog\"\ndefault = true\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", cfg.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"app":"shop","active":"v2","deploy":{"kind":"deploy","deploy_id":7,"step":"shift"}}`))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if err := contractSafe(context.Background(), cfg, "shop"); err == nil {
		t.Fatal("the top-level config: a deploy in flight was not seen (test harness broken)")
	}
	view, err := cfg.ForUnit("shop")
	if err != nil {
		t.Fatal(err)
	}
	if err := contractSafe(context.Background(), view, "shop"); err == nil {
		t.Errorf("shop's view: contract migrations allowed while a deploy of shop is in flight (asked %s)", view.SocketPath())
	}
}
