// Package health checks over HTTP whether one instance of the app serves:
// a GET of a configured path, repeated at an interval, where a 2xx answer
// passes (a redirect fails, naming where it points: see Probe). A Checker
// turns the passes and failures into a healthy or unhealthy verdict with hysteresis (HealthyAfter passes in a row to become
// healthy, UnhealthyAfter failures in a row to stop being so), which the
// deploy waits on to boot an instance and the proxy uses to pick instances.
// An instance that was healthy and then fails RestartAfter checks in a row
// is reported hung (Config.OnHung), once, for the caller to kill and
// restart it, as a liveness probe does; leaving rotation comes first, so a
// slow instance can recover there before it is killed.
//
// An instance of a gRPC app (Config.GRPC) is checked with the standard
// gRPC health protocol instead, as Kubernetes' grpc probe does: a unary
// grpc.health.v1.Health/Check for Config.GRPCService ("" = the server as
// a whole) over HTTP/2 cleartext, where SERVING passes and anything else
// fails, naming the status or the gRPC error (Unimplemented: the server
// registers no health service). A gRPC server does not answer HTTP/1.1, so
// the GET above could never pass. The call is made with net/http's HTTP/2
// client and the two small protobuf messages written and read by hand (a
// gRPC library would add 2.5 MB to the binary for them), on a connection
// of its own closed after the answer, as the GET's is (see ProbeGRPC);
// the tests check it against grpc-go's server and generated messages.
//
// A check can be run synchronously with Checker.Round, so that tests and
// callers that want an answer now need not wait for the interval.
package health
