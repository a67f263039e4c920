package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	t.Cleanup(srv.Close)

	tests := []struct {
		name, method, path string
		body               string
		wantStatus         int
		wantLen            int
		wantBody           string
	}{
		{name: "hello", method: "GET", path: "/", wantStatus: 200, wantLen: 13, wantBody: "Hello, World!"},
		{name: "one MiB", method: "GET", path: "/1m", wantStatus: 200, wantLen: 1 << 20},
		{name: "upload", method: "POST", path: "/upload", body: strings.Repeat("x", 12345), wantStatus: 200, wantBody: "12345\n"},
		{name: "unknown", method: "GET", path: "/nope", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status: got %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantLen > 0 && len(b) != tt.wantLen {
				t.Errorf("body length: got %d, want %d", len(b), tt.wantLen)
			}
			if tt.wantBody != "" && string(b) != tt.wantBody {
				t.Errorf("body: got %q, want %q", b, tt.wantBody)
			}
		})
	}
}
