// Package grpctest is a tiny gRPC service for cutover's tests of gRPC
// apps: a unary call, a server stream and a bidirectional stream, on
// grpc-go's real server and client, with the standard health service. Its
// ServiceDesc is written by hand (no generated code) and its messages are
// protobuf's well-known StringValue, so it needs no protoc.
package grpctest

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Service is the full name of the test service.
const Service = "cutover.grpctest.Echo"

// Method names, as a client calls them.
const (
	UnaryMethod = "/" + Service + "/Unary"
	CountMethod = "/" + Service + "/Count"
	ChatMethod  = "/" + Service + "/Chat"
)

// Server answers the test service's calls. Every answer starts with Name
// and ": ", so a test tells which instance (release) answered.
type Server struct {
	// Name prefixes every answer.
	Name string
	// Cancelled counts the calls whose context ended before they did (a
	// client that cancelled, a stream reset).
	Cancelled atomic.Int64
	// Open counts the streams (Count, Chat) under way.
	Open atomic.Int64
	// Blocked counts the "block" calls under way.
	Blocked atomic.Int64
}

// Unary answers "NAME: MSG". MSG "fail" is answered with status
// FailedPrecondition and message "asked to fail" and no message: a
// "trailers-only" response. MSG "block" waits until the call's context
// ends (counted in Cancelled) and returns its error.
func (s *Server) Unary(ctx context.Context, msg string) (string, error) {
	switch msg {
	case "fail":
		return "", status.Error(codes.FailedPrecondition, "asked to fail")
	case "block":
		s.Blocked.Add(1)
		defer s.Blocked.Add(-1)
		<-ctx.Done()
		s.Cancelled.Add(1)
		return "", status.FromContextError(ctx.Err()).Err()
	}
	return s.Name + ": " + msg, nil
}

// count sends n messages "NAME: i", i from 1 to n, each its own write.
func (s *Server) count(n int, stream grpc.ServerStream) error {
	s.Open.Add(1)
	defer s.Open.Add(-1)
	for i := 1; i <= n; i++ {
		if err := stream.SendMsg(wrapperspb.String(s.Name + ": " + strconv.Itoa(i))); err != nil {
			return err
		}
	}
	return nil
}

// chat answers each message "NAME: MSG" as it comes, until the client
// closes its side; then it ends with the trailer "x-count" holding how
// many it answered. A context that ends first is counted in Cancelled.
func (s *Server) chat(stream grpc.ServerStream) error {
	s.Open.Add(1)
	defer s.Open.Add(-1)
	n := 0
	for {
		in := new(wrapperspb.StringValue)
		err := stream.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			stream.SetTrailer(metadata.Pairs("x-count", strconv.Itoa(n)))
			return nil
		}
		if err != nil {
			if stream.Context().Err() != nil {
				s.Cancelled.Add(1)
			}
			return err
		}
		n++
		if err := stream.SendMsg(wrapperspb.String(s.Name + ": " + in.GetValue())); err != nil {
			return err
		}
	}
}

// desc is the test service, as protoc-gen-go-grpc would write it.
var desc = grpc.ServiceDesc{
	ServiceName: Service,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			out, err := srv.(*Server).Unary(ctx, in.GetValue())
			if err != nil {
				return nil, err
			}
			return wrapperspb.String(out), nil
		},
	}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Count", ServerStreams: true, Handler: func(srv any, stream grpc.ServerStream) error {
			in := new(wrapperspb.StringValue)
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			n, err := strconv.Atoi(in.GetValue())
			if err != nil {
				return status.Errorf(codes.InvalidArgument, "count %q: %v", in.GetValue(), err)
			}
			return srv.(*Server).count(n, stream)
		}},
		{StreamName: "Chat", ServerStreams: true, ClientStreams: true, Handler: func(srv any, stream grpc.ServerStream) error {
			return srv.(*Server).chat(stream)
		}},
	},
}

// NewGRPCServer returns a grpc-go server with s registered, and the
// standard health service (grpc.health.v1), which reports SERVING for
// the server and for Service.
func NewGRPCServer(s *Server) (*grpc.Server, *health.Server) {
	gs := grpc.NewServer()
	gs.RegisterService(&desc, s)
	hs := health.NewServer()
	hs.SetServingStatus(Service, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return gs, hs
}

// Serve serves s on ln (HTTP/2 without TLS) until ln is closed or the
// returned server stopped.
func Serve(ln net.Listener, s *Server) *grpc.Server {
	gs, _ := NewGRPCServer(s)
	go gs.Serve(ln) //nolint:errcheck // ends with Stop
	return gs
}

// Dial returns a client of the test service at target ("host:port"),
// without TLS, with the dial options opts (credentials, a dialer).
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	return grpc.NewClient(target, opts...)
}

// Unary calls Unary with msg.
func Unary(ctx context.Context, cc *grpc.ClientConn, msg string, opts ...grpc.CallOption) (string, error) {
	out := new(wrapperspb.StringValue)
	if err := cc.Invoke(ctx, UnaryMethod, wrapperspb.String(msg), out, opts...); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}

// Count calls Count for n messages and returns them.
func Count(ctx context.Context, cc *grpc.ClientConn, n int) ([]string, error) {
	st, err := cc.NewStream(ctx, &desc.Streams[0], CountMethod)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(wrapperspb.String(strconv.Itoa(n))); err != nil {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	var got []string
	for {
		in := new(wrapperspb.StringValue)
		err := st.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, in.GetValue())
	}
}

// ChatStream is a client's side of a Chat.
type ChatStream struct {
	st grpc.ClientStream
}

// Chat opens a Chat stream.
func Chat(ctx context.Context, cc *grpc.ClientConn) (*ChatStream, error) {
	st, err := cc.NewStream(ctx, &desc.Streams[1], ChatMethod)
	if err != nil {
		return nil, err
	}
	return &ChatStream{st: st}, nil
}

// Say sends msg and returns the answer, or the stream's status when it
// ended.
func (c *ChatStream) Say(msg string) (string, error) {
	in := new(wrapperspb.StringValue)
	if err := c.st.SendMsg(wrapperspb.String(msg)); err != nil {
		if errors.Is(err, io.EOF) {
			// The stream ended: RecvMsg says how.
			if err = c.st.RecvMsg(in); err == nil {
				err = errors.New("chat: stream ended while a message was sent")
			}
		}
		return "", err
	}
	if err := c.st.RecvMsg(in); err != nil {
		return "", err
	}
	return in.GetValue(), nil
}

// Close closes the client's side and waits for the end of the stream;
// it returns the server's "x-count" trailer.
func (c *ChatStream) Close() (string, error) {
	if err := c.st.CloseSend(); err != nil {
		return "", err
	}
	in := new(wrapperspb.StringValue)
	if err := c.st.RecvMsg(in); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("chat: a message after the client closed: " + in.GetValue())
		}
		return "", err
	}
	return strings.Join(c.st.Trailer()["x-count"], ","), nil
}
