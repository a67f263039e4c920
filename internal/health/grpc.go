package health

// The gRPC health protocol (grpc.health.v1), for gRPC apps.

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// GRPCStatusError is the error of a gRPC health check answered with a
// status other than SERVING.
type GRPCStatusError struct {
	Addr    string // the instance's "host:port"
	Service string // the service asked about; "" = the whole server
	// Status is the status answered: NOT_SERVING, UNKNOWN,
	// SERVICE_UNKNOWN.
	Status healthpb.HealthCheckResponse_ServingStatus
}

// Error names the instance, the service and the status, e.g. "gRPC health
// check of 127.0.0.1:4001: status NOT_SERVING".
func (e *GRPCStatusError) Error() string {
	return fmt.Sprintf("gRPC health check of %s%s: status %s", e.Addr, serviceLabel(e.Service), e.Status)
}

// serviceLabel names service in messages; the whole server has no name.
func serviceLabel(service string) string {
	if service == "" {
		return ""
	}
	return fmt.Sprintf(" (service %q)", service)
}

// ProbeGRPC calls grpc.health.v1.Health/Check for service ("" = the
// server as a whole) on the instance at addr, over HTTP/2 without TLS, on
// a connection of its own that it closes after the answer, and returns nil
// if the answer is SERVING, else a *GRPCStatusError or an error saying
// why there was no answer (a gRPC status: Unimplemented when the server
// has no health service). ctx bounds the whole check, connection
// included. The call is grpc-go's own client with the health protocol's
// generated stubs.
func ProbeGRPC(ctx context.Context, addr, service string) error {
	fail := func(err error, hint string) error {
		return fmt.Errorf("health check: gRPC grpc.health.v1.Health/Check of %s%s: %w%s", addr, serviceLabel(service), err, hint)
	}
	// passthrough: addr is dialled as it is, without name resolution.
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("cutover-health"))
	if err != nil {
		return fail(err, "")
	}
	defer cc.Close() //nolint:errcheck // the answer is in
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		hint := ""
		switch status.Code(err) {
		case codes.Unimplemented:
			hint = ": the server has no health service; register grpc.health.v1 (in grpc-go: google.golang.org/grpc/health), or set health.grpc = false to check with a GET of health.path"
		case codes.NotFound:
			hint = ": the health service does not know this service; is app.health.grpc_service misspelt?"
		case codes.DeadlineExceeded:
			if ctx.Err() != nil {
				err = fmt.Errorf("no answer in time: %w", context.Cause(ctx))
			}
		}
		return fail(err, hint)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return &GRPCStatusError{Addr: addr, Service: service, Status: resp.GetStatus()}
	}
	return nil
}
