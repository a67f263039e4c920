package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/grpctest"
)

// streamResult is what one long bidirectional stream saw.
type streamResult struct {
	answers []string  // the releases that answered, in order
	err     error     // how it ended; nil when it finished itself
	trailer string    // its x-count trailer, when it finished
	end     time.Time // when it ended
}

// TestGRPCDeploy deploys a gRPC app (upstream_protocol = "h2c", gRPC health
// checks) under a stream of unary calls from a real grpc-go client over
// the TLS listener, with long bidirectional streams open: no unary call
// fails; a stream that ends during the drain finishes on its release; the
// others run until drain_timeout and then end with UNAVAILABLE. A gRPC
// request on the plain listener is answered 505.
func TestGRPCDeploy(t *testing.T) {
	appBin := filepath.Join(t.TempDir(), "grpcapp")
	build := exec.Command("go", "build", "-o", appBin, "../internal/grpctest/grpcapp")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build grpcapp: %v\n%s", err, out)
	}
	const drainTimeout = 3 * time.Second
	tlsPort := pickPort(t)
	e := newEnv(t, settings{
		command:      fmt.Sprintf("'%s'", appBin),
		drainTimeout: drainTimeout.String(),
		extraApp:     "upstream_protocol = \"h2c\"\ntls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\nredirect_https = false",
		extraHealth:  "grpc = true",
		extra:        fmt.Sprintf("tls_listen = \"127.0.0.1:%d\"\n", tlsPort),
	})
	roots := selfSigned(t, e.dir)
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	cc, err := grpctest.Dial(fmt.Sprintf("127.0.0.1:%d", tlsPort),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got, err := grpctest.Unary(ctx, cc, "hi"); err != nil || got != "v1: hi" {
		t.Fatalf("unary call: got %q, %v", got, err)
	}

	// gRPC over the plain listener (HTTP/1.1) is answered 505.
	req, err := http.NewRequest("POST", e.url(grpctest.UnaryMethod), strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Errorf("gRPC request on the plain listener: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusHTTPVersionNotSupported {
			t.Errorf("gRPC request on the plain listener: %d, want 505", resp.StatusCode)
		}
	}

	// Unary calls, four callers, each about 100 a second.
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var mu sync.Mutex
	byRelease := map[string]int{}
	var errs []string
	var callers sync.WaitGroup
	for range 4 {
		callers.Add(1)
		go func() {
			defer callers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				got, err := grpctest.Unary(cctx, cc, "x")
				ccancel()
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if len(errs) < 10 {
						errs = append(errs, err.Error())
					}
				} else {
					ok.Add(1)
					byRelease[strings.TrimSuffix(got, ": x")]++
				}
				mu.Unlock()
			}
		}()
	}

	// Three long streams: "short" finishes by itself during the drain,
	// the two others never do.
	switched := make(chan struct{})
	results := make([]streamResult, 3)
	var streams sync.WaitGroup
	for i := range results {
		chat, err := grpctest.Chat(ctx, cc)
		if err != nil {
			t.Fatal(err)
		}
		streams.Add(1)
		go func() {
			defer streams.Done()
			r := &results[i]
			finishAt := (<-chan time.Time)(nil)
			sw := switched
			for {
				select {
				case <-sw:
					sw = nil
					if i == 0 {
						finishAt = time.After(time.Second)
					}
				case <-finishAt:
					r.trailer, r.err = chat.Close()
					r.end = time.Now()
					return
				case <-ctx.Done():
					r.err = ctx.Err()
					return
				case <-time.After(100 * time.Millisecond):
				}
				got, err := chat.Say("m")
				if err != nil {
					r.err, r.end = err, time.Now()
					return
				}
				r.answers = append(r.answers, strings.TrimSuffix(got, ": m"))
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)

	var switchEnded time.Time
	_, err = e.client.Deploy(ctx, deploy.Request{Source: v2}, func(ev deploy.Event) {
		if ev.Type == "step" && ev.Step == deploy.StepSwitch && ev.Status == "ok" {
			switchEnded = time.Now()
			close(switched)
		}
	})
	if err != nil {
		t.Errorf("deploy under gRPC load: %v", err)
	}
	streams.Wait()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	callers.Wait()

	t.Logf("unary calls: %d answered (by release %v), %d failed", ok.Load(), byRelease, failed.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d unary calls failed during the deploy: %v", n, errs)
	}
	if byRelease["v1"] == 0 || byRelease["v2"] == 0 {
		t.Errorf("unary calls by release %v: want answers from v1 then v2", byRelease)
	}
	if switchEnded.IsZero() {
		t.Fatal("the deploy never switched")
	}
	for i, r := range results {
		lasted := r.end.Sub(switchEnded)
		t.Logf("stream %d: %d answers, ended %v after the switch: trailer %q, %v", i, len(r.answers), lasted.Round(time.Millisecond), r.trailer, r.err)
		for _, a := range r.answers {
			if a != "v1" {
				t.Errorf("stream %d: answered by %q, want v1 throughout: %v", i, a, r.answers)
				break
			}
		}
		if i == 0 {
			if r.err != nil || r.trailer != fmt.Sprint(len(r.answers)) {
				t.Errorf("stream 0, finishing during the drain: trailer %q, %v; want x-count %d", r.trailer, r.err, len(r.answers))
			}
			continue
		}
		if status.Code(r.err) != codes.Unavailable {
			t.Errorf("stream %d open past drain_timeout: ended with %v, want UNAVAILABLE", i, r.err)
		}
		if lasted < drainTimeout-300*time.Millisecond {
			t.Errorf("stream %d was cut %v after the switch, before drain_timeout (%v)", i, lasted, drainTimeout)
		}
	}
	if got, err := grpctest.Unary(ctx, cc, "after"); err != nil || got != "v2: after" {
		t.Errorf("call after the deploy: got %q, %v", got, err)
	}
}
