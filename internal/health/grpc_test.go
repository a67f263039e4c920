package health

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/cutover/cutover/internal/grpctest"
)

// grpcServer serves the test gRPC service, with the standard health
// service when withHealth, on 127.0.0.1; it returns its address and its
// health service (nil without).
func grpcServer(t *testing.T, withHealth bool) (string, func(svc string, st healthpb.HealthCheckResponse_ServingStatus)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var gs *grpc.Server
	set := func(string, healthpb.HealthCheckResponse_ServingStatus) {}
	if withHealth {
		var hs interface {
			SetServingStatus(string, healthpb.HealthCheckResponse_ServingStatus)
		}
		gs, hs = grpctest.NewGRPCServer(&grpctest.Server{Name: "a"})
		set = hs.SetServingStatus
	} else {
		gs = grpc.NewServer()
	}
	go gs.Serve(ln) //nolint:errcheck // ends with Stop
	t.Cleanup(gs.Stop)
	return ln.Addr().String(), set
}

// TestProbeGRPC checks the gRPC health check: SERVING passes, any other
// status fails naming it, and a server without the health service or a
// service it does not know fail saying what to do.
func TestProbeGRPC(t *testing.T) {
	addr, set := grpcServer(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, svc := range []string{"", grpctest.Service} {
		if err := ProbeGRPC(ctx, addr, svc); err != nil {
			t.Errorf("service %q: %v", svc, err)
		}
	}
	set(grpctest.Service, healthpb.HealthCheckResponse_NOT_SERVING)
	err := ProbeGRPC(ctx, addr, grpctest.Service)
	var se *GRPCStatusError
	if !errors.As(err, &se) || se.Status != StatusNotServing {
		t.Errorf("NOT_SERVING: got %v, want a *GRPCStatusError", err)
	} else if want := `gRPC health check of ` + addr + ` (service "cutover.grpctest.Echo"): status NOT_SERVING`; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if err := ProbeGRPC(ctx, addr, "no.Such"); err == nil || !strings.Contains(err.Error(), "grpc_service misspelt") {
		t.Errorf("unknown service: got %v", err)
	}

	bare, _ := grpcServer(t, false)
	if err := ProbeGRPC(ctx, bare, ""); err == nil || !strings.Contains(err.Error(), "the server has no health service") {
		t.Errorf("server without health service: got %v", err)
	}
}

// TestProbeGRPCNoServer checks that a check of an address without a
// server, or of one that never answers, fails within its context.
func TestProbeGRPCNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := ln.Addr().String()
	defer ln.Close()
	dead := deadAddrFor(t)
	for _, addr := range []string{dead, silent} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := ProbeGRPC(ctx, addr, "")
		cancel()
		if err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("%s: got %v, want an error naming it", addr, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", addr, d)
		}
	}
}

// TestCheckerGRPC checks that a Checker with GRPC set checks with the gRPC
// health protocol: a gRPC server never answers the GET of Path.
func TestCheckerGRPC(t *testing.T) {
	addr, set := grpcServer(t, true)
	var got []bool
	c := NewChecker(Config{GRPC: true, HealthyAfter: 1, UnhealthyAfter: 1}, addr, func(ok bool, _ error) { got = append(got, ok) })
	ctx := context.Background()
	c.Round(ctx)
	set("", healthpb.HealthCheckResponse_NOT_SERVING)
	c.Round(ctx)
	if !equal(got, []bool{true, false}) {
		t.Errorf("transitions %v, want [true false]", got)
	}
	if err := Check(ctx, addr, Config{Path: "/"}); err == nil {
		t.Error("a GET of a gRPC server passed")
	}
}

func deadAddrFor(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCheckStatus checks the reading of HealthCheckResponse messages by
// hand, against the bytes of grpc-go's generated code.
func TestCheckStatus(t *testing.T) {
	for _, st := range []healthpb.HealthCheckResponse_ServingStatus{0, 1, 2, 3} {
		b, err := proto.Marshal(&healthpb.HealthCheckResponse{Status: st})
		if err != nil {
			t.Fatal(err)
		}
		msg := append([]byte{0, 0, 0, 0, byte(len(b))}, b...)
		got, err := checkStatus(msg)
		if err != nil || int32(got) != int32(st) || got.String() != st.String() {
			t.Errorf("%v: got %v (%v)", st, got, err)
		}
	}
	req, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: "a.B"})
	if err != nil {
		t.Fatal(err)
	}
	if got := checkRequest("a.B"); !bytes.Equal(got[5:], req) || int(got[4]) != len(req) {
		t.Errorf("checkRequest: % x, want the message % x", got, req)
	}
	for _, bad := range [][]byte{nil, {1, 0, 0, 0, 0}, {0, 0, 0, 0, 5, 8}, {0, 0, 0, 0, 2, 8, 0x80}, {0, 0, 0, 0, 1, 0x0b}} {
		if _, err := checkStatus(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}
