package tlsfront

// gRPC apps behind the TLS listener: a real grpc-go client over HTTP/2 to
// cutover, and h2c from the proxy to a real grpc-go server (package
// grpctest), with everything the proxy does on the way.

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cutover/cutover/internal/grpctest"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/traffic"
)

// grpcBackend serves the test service named name on 127.0.0.1 over h2c
// and returns it with its address; it stops when the test ends.
func grpcBackend(t testing.TB, name string) (*grpctest.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &grpctest.Server{Name: name}
	gs := grpctest.Serve(ln, s)
	t.Cleanup(gs.Stop)
	return s, ln.Addr().String()
}

// grpcClient returns a gRPC client of f for shop.example.com, over TLS
// (HTTP/2), trusting cert.
func grpcClient(t testing.TB, f *front, cert testCert) *grpc.ClientConn {
	t.Helper()
	cc, err := grpctest.Dial("passthrough:///shop.example.com:443",
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool(cert), ServerName: "shop.example.com"})),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", f.addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// grpcProxy is a proxy with one h2c backend of release "a" serving the
// test service, behind a TLS listener, and a gRPC client of it.
func grpcProxy(t *testing.T, opts proxy.Options) (*proxy.Proxy, *grpctest.Server, *grpc.ClientConn, *front, testCert) {
	t.Helper()
	s, addr := grpcBackend(t, "a")
	p := proxy.New(opts)
	p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: addr, Protocol: proxy.H2C}).SetHealthy(true)
	p.SetActive("a")
	f, cert := tlsProxy(t, p)
	return p, s, grpcClient(t, f, cert), f, cert
}

func ctxLimit(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// TestGRPCOverTLS makes every kind of call through cutover: unary, a
// server stream, a bidirectional stream with a trailer, an error answered
// "trailers-only", and the standard health check.
func TestGRPCOverTLS(t *testing.T) {
	_, _, cc, _, _ := grpcProxy(t, proxy.Options{App: "shop"})
	ctx := ctxLimit(t)
	if got, err := grpctest.Unary(ctx, cc, "hi"); err != nil || got != "a: hi" {
		t.Errorf("unary: got %q, %v; want %q", got, err, "a: hi")
	}
	got, err := grpctest.Count(ctx, cc, 5)
	if err != nil || strings.Join(got, ",") != "a: 1,a: 2,a: 3,a: 4,a: 5" {
		t.Errorf("server stream: got %q, %v", got, err)
	}
	chat, err := grpctest.Chat(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two", "three"} {
		// Each answer comes before the next message is sent: the stream
		// flows both ways through the proxy.
		if got, err := chat.Say(m); err != nil || got != "a: "+m {
			t.Fatalf("chat %q: got %q, %v", m, got, err)
		}
	}
	if n, err := chat.Close(); err != nil || n != "3" {
		t.Errorf("chat end: x-count trailer %q, %v; want 3", n, err)
	}
	_, err = grpctest.Unary(ctx, cc, "fail")
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || st.Message() != "asked to fail" {
		t.Errorf("trailers-only error: got %v, want FailedPrecondition %q", err, "asked to fail")
	}
	hc := healthpb.NewHealthClient(cc)
	for _, svc := range []string{"", grpctest.Service} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: %v, %v", svc, resp.GetStatus(), err)
		}
	}
}

// accessLog gathers the proxy's access log entries.
type accessLog struct {
	mu      sync.Mutex
	entries []traffic.Access
}

func (l *accessLog) Log(a traffic.Access) {
	l.mu.Lock()
	l.entries = append(l.entries, a)
	l.mu.Unlock()
}

func (l *accessLog) all() []traffic.Access {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]traffic.Access(nil), l.entries...)
}

// TestGRPCPinsLogAndMetrics checks that gRPC calls are pinned by the
// version header (as metadata), logged and counted like any request.
func TestGRPCPinsLogAndMetrics(t *testing.T) {
	var log accessLog
	p, _, cc, _, _ := grpcProxy(t, proxy.Options{App: "shop", Sticky: true, AccessLog: &log})
	_, addrB := grpcBackend(t, "b")
	p.AddBackend(proxy.BackendSpec{ID: "b1", Release: "b", Addr: addrB, Protocol: proxy.H2C}).SetHealthy(true)
	p.SetWeights(map[string]int{"a": 50, "b": 50})
	ctx := ctxLimit(t)
	for _, rel := range []string{"a", "b", "a", "b"} {
		var hdr metadata.MD
		got, err := grpctest.Unary(metadata.AppendToOutgoingContext(ctx, "x-cutover-release", rel), cc, "pin", grpc.Header(&hdr))
		if err != nil || got != rel+": pin" {
			t.Errorf("pinned to %s: got %q, %v", rel, got, err)
		}
		if v := hdr.Get("x-cutover-release"); len(v) != 1 || v[0] != rel {
			t.Errorf("version header of the answer: %v, want %s", v, rel)
		}
	}
	waitFor(t, "the access log", func() bool { return len(log.all()) == 4 })
	for i, a := range log.all() {
		if a.Status != 200 || a.Proto != "HTTP/2.0" || a.Method != "POST" || a.URI != grpctest.UnaryMethod ||
			a.Release == "" || a.Instance == "" || a.Bytes == 0 {
			t.Errorf("access log entry %d: %+v", i, a)
		}
	}
	m := p.Metrics()
	for _, r := range m.Releases {
		if r.Status[2] != 2 {
			t.Errorf("release %s: %v answers by class, want 2 2xx", r.Release, r.Status)
		}
	}
}

// TestGRPCCancelReachesApp checks that a client cancelling its call (an
// RST_STREAM to cutover) cancels the app's handler.
func TestGRPCCancelReachesApp(t *testing.T) {
	p, s, cc, _, _ := grpcProxy(t, proxy.Options{App: "shop"})
	ctx, cancel := context.WithCancel(ctxLimit(t))
	done := make(chan error, 1)
	go func() {
		_, err := grpctest.Unary(ctx, cc, "block")
		done <- err
	}()
	waitFor(t, "the call in the app", func() bool { return s.Blocked.Load() == 1 })
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Errorf("cancelled call: got %v, want Canceled", err)
	}
	// At once, not when something else times out.
	waitWithin(t, time.Second, "the app's handler to see its context cancelled", func() bool { return s.Cancelled.Load() == 1 })
	waitFor(t, "nothing in flight", func() bool { return p.Stats()["a"].InFlight == 0 })
}

// TestGRPCHoldAndRetryOverTLS checks that calls wait while no instance is
// healthy, and that a call whose instance refuses the connection goes to
// another one: no call fails.
func TestGRPCHoldAndRetryOverTLS(t *testing.T) {
	p := proxy.New(proxy.Options{App: "shop", HoldTimeout: waitLimit})
	dead := p.AddBackend(proxy.BackendSpec{ID: "a0", Release: "a", Addr: deadTCPAddr(t), Protocol: proxy.H2C})
	dead.SetHealthy(true)
	p.SetActive("a")
	_, addr := grpcBackend(t, "a")
	live := p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: addr, Protocol: proxy.H2C})
	f, cert := tlsProxy(t, p)
	cc := grpcClient(t, f, cert)
	ctx := ctxLimit(t)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			got, err := grpctest.Unary(ctx, cc, "x")
			if err == nil && got != "a: x" {
				err = status.Errorf(codes.Unknown, "call %d: got %q", i, got)
			}
			errs <- err
		}()
	}
	// The dead instance refuses every call: it leaves rotation, and the
	// calls wait for a healthy instance.
	waitFor(t, "the dead instance out of rotation", dead.Down)
	time.Sleep(100 * time.Millisecond)
	live.SetHealthy(true)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("call: %v", err)
		}
	}
}

// TestGRPCDrainOverTLS checks that a drain waits for a release's open
// streams and cuts those still open at its deadline, while new calls go to
// the new release.
func TestGRPCDrainOverTLS(t *testing.T) {
	p, _, cc, _, _ := grpcProxy(t, proxy.Options{App: "shop"})
	_, addrB := grpcBackend(t, "b")
	p.AddBackend(proxy.BackendSpec{ID: "b1", Release: "b", Addr: addrB, Protocol: proxy.H2C}).SetHealthy(true)
	ctx := ctxLimit(t)
	finishing, err := grpctest.Chat(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	lingering, err := grpctest.Chat(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*grpctest.ChatStream{finishing, lingering} {
		if got, err := c.Say("hello"); err != nil || got != "a: hello" {
			t.Fatalf("chat: got %q, %v", got, err)
		}
	}
	p.SetActive("b")
	dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	drained := make(chan proxy.DrainResult, 1)
	go func() { drained <- p.Drain(dctx, "a", 0) }()
	if got, err := grpctest.Unary(ctx, cc, "new"); err != nil || got != "b: new" {
		t.Errorf("call during the drain: got %q, %v; want %q", got, err, "b: new")
	}
	// The streams of the draining release go on until they end.
	for _, c := range []*grpctest.ChatStream{finishing, lingering} {
		if got, err := c.Say("still there"); err != nil || got != "a: still there" {
			t.Errorf("chat during the drain: got %q, %v", got, err)
		}
	}
	if n, err := finishing.Close(); err != nil || n != "2" {
		t.Errorf("stream ending during the drain: x-count %q, %v", n, err)
	}
	var res proxy.DrainResult
	select {
	case res = <-drained:
	case <-time.After(waitLimit):
		t.Fatal("drain did not return")
	}
	if res.Finished != 1 || res.Cut != 1 {
		t.Errorf("drain: %+v, want 1 finished and 1 cut", res)
	}
	// Cut with UNAVAILABLE, which clients retry, not reset (INTERNAL).
	if _, err := lingering.Say("after the cut"); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "instance a1 of release a went away") {
		t.Errorf("a stream open past drain_timeout: got %v, want it cut with UNAVAILABLE", err)
	}
}

// TestGRPCQuietStreamOverTLS checks that a bidirectional stream may stay
// quiet for longer than ClientBodyTimeout: gRPC streams do, by design.
func TestGRPCQuietStreamOverTLS(t *testing.T) {
	_, _, cc, _, _ := grpcProxy(t, proxy.Options{App: "shop", ClientBodyTimeout: 100 * time.Millisecond})
	chat, err := grpctest.Chat(ctxLimit(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"before", "after a pause"} {
		if got, err := chat.Say(m); err != nil || got != "a: "+m {
			t.Fatalf("chat %q: got %q, %v", m, got, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if n, err := chat.Close(); err != nil || n != "2" {
		t.Errorf("chat end: x-count %q, %v", n, err)
	}
}

// TestGRPCTrailersOnlyOverTLS checks, at the HTTP/2 level, that a gRPC
// error answered "trailers-only" (one HEADERS frame ending the stream)
// reaches the client as one, and that a normal answer's status comes as
// trailers.
func TestGRPCTrailersOnlyOverTLS(t *testing.T) {
	_, _, _, f, cert := grpcProxy(t, proxy.Options{App: "shop"})
	c := f.client(t, pool(cert), true)
	for _, tt := range []struct {
		msg, headerStatus, trailerStatus string
	}{
		{"fail", "9", ""},
		{"ok", "", "0"},
	} {
		// A gRPC message: not compressed, its length, then a StringValue
		// (field 1, length-delimited).
		frame := "\x00\x00\x00\x00" + string(rune(2+len(tt.msg))) + "\x0a" + string(rune(len(tt.msg))) + tt.msg
		req := newReq(t, "POST", shopURL+strings.TrimPrefix(grpctest.UnaryMethod, "/"), strings.NewReader(frame))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		resp, _ := do(t, c, req)
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("%s: %s %d", tt.msg, resp.Proto, resp.StatusCode)
		}
		if got := resp.Header.Get("Grpc-Status"); got != tt.headerStatus {
			t.Errorf("%s: grpc-status in the headers %q, want %q", tt.msg, got, tt.headerStatus)
		}
		if got := resp.Trailer.Get("Grpc-Status"); got != tt.trailerStatus {
			t.Errorf("%s: grpc-status in the trailers %q, want %q", tt.msg, got, tt.trailerStatus)
		}
	}
}

// TestGRPCProxyErrorsOverTLS checks that the proxy's own errors reach a
// gRPC client as gRPC statuses carrying cutover's message (a 503 after
// holding, a 504 for an app too slow to answer), and are logged with
// their HTTP status.
func TestGRPCProxyErrorsOverTLS(t *testing.T) {
	var log accessLog
	p, _, cc, _, _ := grpcProxy(t, proxy.Options{App: "shop", HoldTimeout: 100 * time.Millisecond,
		ResponseHeaderTimeout: 200 * time.Millisecond, AccessLog: &log})
	ctx := ctxLimit(t)
	_, err := grpctest.Unary(ctx, cc, "block")
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "cutover: instance of release a did not answer within 200ms") {
		t.Errorf("app too slow: got %v, want UNAVAILABLE with cutover's message", err)
	}
	p.SetWeights(nil)
	_, err = grpctest.Unary(ctx, cc, "held")
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || st.Message() != "cutover: no healthy instance of shop after 100ms" {
		t.Errorf("no release: got %v, want UNAVAILABLE with cutover's message", err)
	}
	waitFor(t, "the access log", func() bool { return len(log.all()) == 2 })
	for i, want := range []int{504, 503} {
		if got := log.all()[i].Status; got != want {
			t.Errorf("access log entry %d: status %d, want %d", i, got, want)
		}
	}
}

// TestH2CAnswerBeforeBodyOverTLS checks a stream whose app answers and
// ends before the client has sent its whole body, the client then
// sending nothing more: the exchange ends (nothing stays in flight, the
// client gets the whole answer) without waiting for the client.
func TestH2CAnswerBeforeBodyOverTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		io.ReadFull(r.Body, buf)                //nolint:errcheck // answered either way
		io.WriteString(w, "early "+string(buf)) //nolint:errcheck // the client checks
	}))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &protos
	srv.Start()
	t.Cleanup(srv.Close)
	p := proxy.New(proxy.Options{App: "shop"})
	p.AddBackend(proxy.BackendSpec{ID: "a1", Release: "a", Addr: strings.TrimPrefix(srv.URL, "http://"), Protocol: proxy.H2C}).SetHealthy(true)
	p.SetActive("a")
	f, cert := tlsProxy(t, p)
	c := f.client(t, pool(cert), true)
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("hello")) //nolint:errcheck // the answer tells
	resp, body := do(t, c, newReq(t, "POST", shopURL, pr))
	if resp.StatusCode != 200 || body != "early hello" {
		t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, "early hello")
	}
	waitWithin(t, 2*time.Second, "nothing in flight", func() bool { return p.Stats()["a"].InFlight == 0 })
}

// TestGRPCOverHTTP1 checks that a gRPC request over HTTP/1.1, which cannot
// work, is answered 505 with what to do.
func TestGRPCOverHTTP1(t *testing.T) {
	p, _, _, f, cert := grpcProxy(t, proxy.Options{App: "shop"})
	c := f.client(t, pool(cert), false)
	req := newReq(t, "POST", shopURL+strings.TrimPrefix(grpctest.UnaryMethod, "/"), strings.NewReader("\x00\x00\x00\x00\x00"))
	req.Header.Set("Content-Type", "application/grpc")
	resp, body := do(t, c, req)
	if resp.StatusCode != http.StatusHTTPVersionNotSupported || !strings.Contains(body, "gRPC needs HTTP/2") {
		t.Errorf("got %d %q, want 505 saying gRPC needs HTTP/2", resp.StatusCode, body)
	}
	if st := p.Stats()["a"]; st.Requests != 0 || st.InFlight != 0 {
		t.Errorf("release a counted the refused request: %+v", st)
	}
}

// deadTCPAddr returns a loopback address nothing listens on.
func deadTCPAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, waitLimit, what, cond)
}

// waitWithin polls cond until it holds, failing the test after d.
func waitWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
