package api

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/state"
)

// TestDeployStreamCutByDaemonDeath: the deploy stream breaks mid-deploy
// (the daemon was killed) and the daemon that answers next recorded the
// deploy as interrupted. `cutover deploy` must say so — not that the
// deploy goes on — and what is live; while a deploy does go on (the stream
// broke but the daemon lives), it must say that.
func TestDeployStreamCutByDaemonDeath(t *testing.T) {
	for _, c := range []struct {
		name     string
		live     string
		inFlight *deploy.Progress
		want     []string
	}{
		{"daemon killed", "r1", nil, []string{"interrupted", "deploy #7", "r1 is live", "deploy again"}},
		{"daemon killed after the switch", "r2", nil, []string{"interrupted", "deploy #7, after its switch", "r2, the release it deployed, is live"}},
		{"deploy goes on", "r1", &deploy.Progress{DeployID: 7, Release: "r2", Step: "boot"}, []string{"goes on", "deploy #7 of r2, step boot"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "co-api-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			sock := filepath.Join(dir, "s")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /v1/deploys", func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode(deploy.Event{Type: "step", Step: deploy.StepBoot, Status: "start"})
				w.(http.Flusher).Flush()
				// The daemon dies: the connection closes mid-stream.
				conn, _, _ := http.NewResponseController(w).Hijack()
				conn.Close()
			})
			mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode(deploy.Status{Active: c.live, Deploy: c.inFlight})
			})
			mux.HandleFunc("GET /v1/deploys", func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode([]state.Deploy{{ID: 7, Release: "r2", State: state.DeployInterrupted}})
			})
			srv := &http.Server{Handler: mux}
			go srv.Serve(ln)
			defer srv.Close()

			var steps int
			_, err = NewClient(sock).Deploy(ctxT(t), deploy.Request{Source: "/src"}, func(deploy.Event) { steps++ })
			if steps != 1 || err == nil {
				t.Fatalf("deploy: %d event(s), err %v; want the boot event, then an error", steps, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c.inFlight == nil && strings.Contains(err.Error(), "goes on") {
				t.Errorf("error %q says the deploy goes on; the daemon recorded it as interrupted", err)
			}
		})
	}
}
