package e2e

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
)

// TestRequestBodies: through the real daemon, with the [proxy] body keys
// set, an upload past request_buffer_memory reaches the app whole and
// leaves no file in <data_dir>/bodies; a malformed chunk gets 400 at
// once, a stalled body 408 after client_body_timeout, and a body over
// max_request_body 413.
func TestRequestBodies(t *testing.T) {
	e := newEnv(t, settings{instances: 1, extra: `client_body_timeout = "500ms"
request_buffer_memory = 4096
max_request_body = 300000
`})
	v1 := e.release("v1", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}

	body := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	req, err := http.NewRequest(http.MethodPut, e.url("/files/upload.bin"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("upload of %d bytes: got %d, want %d", len(body), resp.StatusCode, http.StatusCreated)
	}
	resp, err = http.Get(e.url("/files/upload.bin"))
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("the app stored %d bytes (%v), want the %d uploaded", len(got), err, len(body))
	}
	if left, err := os.ReadDir(filepath.Join(e.dir, "data", "bodies")); err != nil || len(left) != 0 {
		t.Errorf("<data_dir>/bodies after the upload: %d files (%v), want an empty directory", len(left), err)
	}

	addr := strings.TrimPrefix(e.url(""), "http://")
	for _, tc := range []struct {
		name, send string
		want       int
		after      time.Duration
	}{
		{"malformed chunk", "POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", http.StatusBadRequest, 0},
		{"stalled body", "POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 100\r\n\r\nhalf", http.StatusRequestTimeout, 500 * time.Millisecond},
		{"body too large", "POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 300001\r\nExpect: 100-continue\r\n\r\n", http.StatusRequestEntityTooLarge, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			sent := time.Now()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			took := time.Since(sent)
			if err != nil {
				t.Fatalf("read answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tc.want)
			}
			if took < tc.after*7/8 || took > tc.after+time.Second {
				t.Errorf("answered after %v, want about %v", took, tc.after)
			}
		})
	}
}
