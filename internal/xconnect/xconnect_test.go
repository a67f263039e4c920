package xconnect_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/cutover/cutover/internal/xconnect"
)

// As in package tlsfront: this package imports net/http, so its init runs
// after net/http's.
func init() { xconnect.Restore() }

// childEnv marks the test binary run as a child by TestGODEBUG.
const childEnv = "XCONNECT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child reports on stdout what a process started with the parent's
// GODEBUG sees: GODEBUG now (after Restore), whether it is set, and
// whether an extended CONNECT to net/http's HTTP/2 server succeeds.
func child() int {
	v, set := os.LookupEnv("GODEBUG")
	fmt.Printf("godebug=%q set=%v enabled=%v xconnect=%s\n", v, set, xconnect.Enabled(), extendedConnect())
	return 0
}

// extendedConnect opens a websocket stream (RFC 8441) to an HTTP/2 server
// of net/http's and reports "ok", or the error.
func extendedConnect() string {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Header.Get(":protocol") != "websocket" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	req, err := http.NewRequest(http.MethodConnect, srv.URL+"/ws", nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set(":protocol", "websocket")
	// net/http's Transport refuses a :protocol field; x/net's HTTP/2 one
	// sends it as the pseudo-header.
	tr := &http2.Transport{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return strings.ReplaceAll(err.Error(), " ", "_")
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%s_%d", resp.Proto, resp.StatusCode)
	}
	return "ok"
}

// TestGODEBUG runs the test binary with several GODEBUG values: net/http's
// HTTP/2 server must accept extended CONNECT unless the user said
// http2xconnect=0, and GODEBUG must be, once the packages are initialised,
// exactly what the process was started with.
func TestGODEBUG(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     []string // GODEBUG=..., or nothing for unset
		want    string
		enabled bool
	}{
		{"unset", nil, `godebug="" set=false`, true},
		{"empty", []string{"GODEBUG="}, `godebug="" set=true`, true},
		{"user's", []string{"GODEBUG=madvdontneed=1,x509sha1=1"}, `godebug="madvdontneed=1,x509sha1=1" set=true`, true},
		{"user's on", []string{"GODEBUG=http2xconnect=1"}, `godebug="http2xconnect=1" set=true`, true},
		{"user's off", []string{"GODEBUG=http2xconnect=0"}, `godebug="http2xconnect=0" set=true`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(withoutGODEBUG(os.Environ()), childEnv+"=1")
			cmd.Env = append(cmd.Env, tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, stderr.Bytes())
			}
			got := strings.TrimSpace(string(out))
			xc := "ok"
			if !tc.enabled {
				xc = "net/http:_extended_connect_not_supported_by_peer"
			}
			want := fmt.Sprintf("%s enabled=%v xconnect=%s", tc.want, tc.enabled, xc)
			if got != want {
				t.Errorf("child says\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// withoutGODEBUG is env without GODEBUG.
func withoutGODEBUG(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			out = append(out, kv)
		}
	}
	return out
}
