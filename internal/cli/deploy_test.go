package cli

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/deploy"
)

func TestRenderWaiting(t *testing.T) {
	var b strings.Builder
	renderEvent(&b, deploy.Event{Type: "waiting", Step: deploy.StepBoot, Instance: "r-1",
		Message: "instance r-1: last health check: GET http://127.0.0.1:4001/healthz: status 404 Not Found (5s of boot_timeout 1m0s)"})
	want := "    waiting: instance r-1: last health check: GET http://127.0.0.1:4001/healthz: status 404 Not Found (5s of boot_timeout 1m0s)\n"
	if got := b.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
