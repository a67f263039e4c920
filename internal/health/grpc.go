package health

// The gRPC health protocol (grpc.health.v1), for gRPC apps.
//
// The check is one unary call, grpc.health.v1.Health/Check, made with
// net/http's HTTP/2 client without TLS and the two protobuf messages
// written and read by hand: the request has one string field (service),
// the answer one enum field (status). A gRPC client library would bring
// megabytes into the binary for those few bytes.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ServingStatus is grpc.health.v1.HealthCheckResponse.ServingStatus.
type ServingStatus int32

// The statuses of the health protocol.
const (
	StatusUnknown        ServingStatus = 0
	StatusServing        ServingStatus = 1
	StatusNotServing     ServingStatus = 2
	StatusServiceUnknown ServingStatus = 3
)

// String is the status's name in the protocol, e.g. "NOT_SERVING".
func (s ServingStatus) String() string {
	switch s {
	case StatusUnknown:
		return "UNKNOWN"
	case StatusServing:
		return "SERVING"
	case StatusNotServing:
		return "NOT_SERVING"
	case StatusServiceUnknown:
		return "SERVICE_UNKNOWN"
	}
	return strconv.Itoa(int(s))
}

// GRPCStatusError is the error of a gRPC health check answered with a
// status other than SERVING.
type GRPCStatusError struct {
	Addr    string // the instance's "host:port"
	Service string // the service asked about; "" = the whole server
	// Status is the status answered: NOT_SERVING, UNKNOWN,
	// SERVICE_UNKNOWN.
	Status ServingStatus
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

// gRPC status codes the check explains (google.golang.org/grpc/codes).
const (
	codeDeadlineExceeded = 4
	codeNotFound         = 5
	codeUnimplemented    = 12
)

var codeNames = [...]string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
	"Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

// maxHealthAnswer bounds the answer read: a health answer is a few bytes.
const maxHealthAnswer = 64 << 10

// ProbeGRPC calls grpc.health.v1.Health/Check for service ("" = the
// server as a whole) on the instance at addr, over HTTP/2 without TLS, on
// a connection of its own that it closes after the answer, and returns nil
// if the answer is SERVING, else a *GRPCStatusError or an error saying
// why there was no answer (a gRPC status: Unimplemented when the server
// has no health service). ctx bounds the whole check, connection
// included.
func ProbeGRPC(ctx context.Context, addr, service string) error {
	fail := func(err error, hint string) error {
		return fmt.Errorf("health check: gRPC grpc.health.v1.Health/Check of %s%s: %w%s", addr, serviceLabel(service), err, hint)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	var d net.Dialer
	tr := &http.Transport{Protocols: &protos, DialContext: d.DialContext, DisableCompression: true}
	defer tr.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/grpc.health.v1.Health/Check",
		bytes.NewReader(checkRequest(service)))
	if err != nil {
		return fail(err, "")
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("User-Agent", "cutover-health")
	if dl, ok := ctx.Deadline(); ok {
		// The server may give up when the check does.
		req.Header.Set("Grpc-Timeout", strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10)+"m")
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer in time: %w", context.Cause(ctx))
		}
		return fail(err, "")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("HTTP status %d, not a gRPC answer", resp.StatusCode), ": is the app a gRPC server on this port?")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthAnswer))
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer in time: %w", context.Cause(ctx))
		}
		return fail(err, "")
	}
	// A call that fails at once answers with headers only
	// ("trailers-only"): its status is among the headers.
	code, msg := resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	if code == "" {
		code, msg = resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	}
	if code != "0" {
		n, err := strconv.Atoi(code)
		if code == "" || err != nil {
			return fail(fmt.Errorf("the answer has no gRPC status (grpc-status %q)", code), "")
		}
		if m, err := url.PathUnescape(msg); err == nil {
			msg = m
		}
		name := strconv.Itoa(n)
		if n >= 0 && n < len(codeNames) {
			name = codeNames[n]
		}
		hint := ""
		switch n {
		case codeUnimplemented:
			hint = ": the server has no health service; register grpc.health.v1 (in grpc-go: google.golang.org/grpc/health), or set health.grpc = false to check with a GET of health.path"
		case codeNotFound:
			hint = ": the health service does not know this service; is app.health.grpc_service misspelt?"
		}
		e := fmt.Errorf("code %s: %s", name, msg)
		if n == codeDeadlineExceeded && ctx.Err() != nil {
			e = fmt.Errorf("no answer in time: %w", context.Cause(ctx))
		}
		return fail(e, hint)
	}
	st, err := checkStatus(body)
	if err != nil {
		return fail(err, "")
	}
	if st != StatusServing {
		return &GRPCStatusError{Addr: addr, Service: service, Status: st}
	}
	return nil
}

// checkRequest is a HealthCheckRequest{service} as a gRPC message: the
// 5-byte prefix (not compressed, length), then field 1, a string.
func checkRequest(service string) []byte {
	var m []byte
	if service != "" {
		m = append(m, 0x0a) // field 1, length-delimited
		m = binary.AppendUvarint(m, uint64(len(service)))
		m = append(m, service...)
	}
	out := make([]byte, 5, 5+len(m))
	binary.BigEndian.PutUint32(out[1:], uint32(len(m)))
	return append(out, m...)
}

// checkStatus reads the status of the HealthCheckResponse message in
// body (one gRPC message: the prefix, then the protobuf bytes). A
// response without the field is UNKNOWN (protobuf's default, 0).
func checkStatus(body []byte) (ServingStatus, error) {
	if len(body) < 5 {
		return 0, fmt.Errorf("the answer is %d bytes, shorter than a gRPC message's prefix", len(body))
	}
	if body[0] != 0 {
		return 0, errors.New("the answer is compressed, which the check did not ask for")
	}
	n := binary.BigEndian.Uint32(body[1:5])
	m := body[5:]
	if uint64(n) != uint64(len(m)) {
		return 0, fmt.Errorf("the answer's message is %d bytes, its prefix says %d", len(m), n)
	}
	st := StatusUnknown
	for len(m) > 0 {
		key, k := binary.Uvarint(m)
		if k <= 0 {
			return 0, errors.New("the answer is not a HealthCheckResponse: bad field key")
		}
		m = m[k:]
		switch key & 7 {
		case 0: // varint
			v, k := binary.Uvarint(m)
			if k <= 0 {
				return 0, errors.New("the answer is not a HealthCheckResponse: bad varint")
			}
			m = m[k:]
			if key>>3 == 1 {
				st = ServingStatus(int32(v))
			}
		case 1: // 64-bit
			if len(m) < 8 {
				return 0, errors.New("the answer is not a HealthCheckResponse: short field")
			}
			m = m[8:]
		case 2: // length-delimited
			l, k := binary.Uvarint(m)
			if k <= 0 || l > uint64(len(m)-k) {
				return 0, errors.New("the answer is not a HealthCheckResponse: bad length")
			}
			m = m[k+int(l):]
		case 5: // 32-bit
			if len(m) < 4 {
				return 0, errors.New("the answer is not a HealthCheckResponse: short field")
			}
			m = m[4:]
		default:
			return 0, fmt.Errorf("the answer is not a HealthCheckResponse: wire type %d", key&7)
		}
	}
	return st, nil
}
