package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestContext(t *testing.T) {
	t.Parallel()

	t.Run("canceled when the handler returns", func(t *testing.T) {
		t.Parallel()
		ctxs := make(chan context.Context, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.Context().Err(); err != nil {
				panic("context canceled while the handler runs: " + err.Error())
			}
			ctxs <- r.Context()
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		ctx := recv(t, ctxs, "the handler")
		if !ctxCanceledWithin(ctx, time.Second) {
			t.Fatalf("the request context was not canceled after the handler returned")
		}
	})

	clientLeaves := func(t *testing.T, req string) {
		t.Parallel()
		started := make(chan struct{})
		canceled := make(chan bool, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			close(started)
			canceled <- ctxCanceledWithin(r.Context(), ioTimeout)
		}))
		c := dial(t, addr)
		c.write(req)
		recv(t, started, "the handler to start")
		_ = c.c.Close()
		t0 := time.Now()
		if !recv(t, canceled, "the handler to end") {
			t.Fatalf("sent %q then closed the connection: the request context was not canceled within %v", req, ioTimeout)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("sent %q then closed the connection: the request context was canceled after %v, want within 1s", req, d)
		}
	}
	t.Run("canceled when the client leaves during a GET", func(t *testing.T) {
		clientLeaves(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	})
	t.Run("canceled when the client leaves during a POST whose body was read", func(t *testing.T) {
		clientLeaves(t, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	})
	t.Run("canceled when the client leaves during a chunked POST whose body was read", func(t *testing.T) {
		clientLeaves(t, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	})

	t.Run("canceled when the client leaves a connection whose watch timer ticks", func(t *testing.T) {
		// Fast requests, one every few milliseconds, keep the connection's
		// watch timer ticking; the slow one after them is seen armed at a
		// tick that an earlier request started, and must still be watched.
		t.Parallel()
		started := make(chan struct{})
		canceled := make(chan bool, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/slow" {
				time.Sleep(clientGoneDelay / 8)
				return
			}
			close(started)
			canceled <- ctxCanceledWithin(r.Context(), ioTimeout)
		}))
		c := dial(t, addr)
		const fast = "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
		for range 20 {
			c.write(fast)
			c.mustResponse("GET", fast)
		}
		c.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		recv(t, started, "the slow handler to start")
		_ = c.c.Close()
		t0 := time.Now()
		if !recv(t, canceled, "the handler to end") {
			t.Fatalf("the request context was not canceled within %v of the client leaving", ioTimeout)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("the request context was canceled %v after the client left, want within 1s", d)
		}
	})

	t.Run("Err, Done, children and AfterFunc once the handler returned", func(t *testing.T) {
		t.Parallel()
		type captured struct {
			ctx, child, timeoutChild, valueChild context.Context
			cancels                              []context.CancelFunc
			afterRan                             chan struct{}
			during                               []string // problems seen while the handler ran
		}
		got := make(chan captured, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			var cp captured
			cp.ctx = ctx
			if r.URL.Path == "/done-first" {
				// Done before the cancel: the channel is then closed by it.
				select {
				case <-ctx.Done():
					cp.during = append(cp.during, "Done closed while the handler runs")
				default:
				}
			}
			if err := ctx.Err(); err != nil {
				cp.during = append(cp.during, "Err = "+err.Error())
			}
			if _, ok := ctx.Deadline(); ok {
				cp.during = append(cp.during, "has a deadline")
			}
			if v := ctx.Value(http.ServerContextKey); v != nil {
				cp.during = append(cp.during, fmt.Sprintf("carries http.ServerContextKey = %v", v))
			}
			var cancel1, cancel2 context.CancelFunc
			cp.child, cancel1 = context.WithCancel(ctx)
			cp.timeoutChild, cancel2 = context.WithTimeout(ctx, time.Hour)
			// Called by the test once it checked the children were
			// canceled through their parent.
			cp.cancels = []context.CancelFunc{cancel1, cancel2}
			cp.valueChild = context.WithValue(ctx, ctxKey("k"), "v")
			cp.afterRan = make(chan struct{})
			context.AfterFunc(ctx, func() { close(cp.afterRan) })
			if err := cp.child.Err(); err != nil {
				cp.during = append(cp.during, "child Err = "+err.Error())
			}
			got <- cp
		}))
		for _, path := range []string{"/", "/done-first"} {
			c := dial(t, addr)
			req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
			c.write(req)
			c.mustResponse("GET", req)
			cp := recv(t, got, "the handler")
			if len(cp.during) > 0 {
				t.Errorf("%s: while the handler ran, the request context: %v", path, cp.during)
			}
			for name, ctx := range map[string]context.Context{
				"request": cp.ctx, "WithCancel child": cp.child, "WithTimeout child": cp.timeoutChild, "WithValue child": cp.valueChild,
			} {
				if !ctxCanceledWithin(ctx, time.Second) {
					t.Errorf("%s: %s context not canceled within 1s of the answer", path, name)
					continue
				}
				if !errors.Is(ctx.Err(), context.Canceled) {
					t.Errorf("%s: %s context Err = %v, want context.Canceled", path, name, ctx.Err())
				}
			}
			for _, cancel := range cp.cancels {
				cancel()
			}
			if !errors.Is(context.Cause(cp.ctx), context.Canceled) {
				t.Errorf("%s: context.Cause = %v, want context.Canceled", path, context.Cause(cp.ctx))
			}
			if !wait(cp.afterRan) {
				t.Errorf("%s: the function registered with context.AfterFunc did not run", path)
			}
			after := make(chan struct{})
			if stop := context.AfterFunc(cp.ctx, func() { close(after) }); stop() {
				t.Errorf("%s: stop of an AfterFunc registered on a canceled context reported success", path)
			}
			if !wait(after) {
				t.Errorf("%s: context.AfterFunc on a canceled context did not run", path)
			}
		}
	})

	t.Run("AfterFunc stop functions", func(t *testing.T) {
		t.Parallel()
		type result struct {
			stops []bool
			ran   [4]chan struct{}
		}
		results := make(chan *result, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			res := &result{}
			for i := range res.ran {
				res.ran[i] = make(chan struct{})
			}
			f := func(i int) func() { return func() { close(res.ran[i]) } }
			stop0 := context.AfterFunc(ctx, f(0))
			stop1 := context.AfterFunc(ctx, f(1))
			res.stops = append(res.stops, stop0(), stop0())
			stop2 := context.AfterFunc(ctx, f(2))
			// Stopping the first again must not unregister the callback
			// registered after it.
			res.stops = append(res.stops, stop0(), stop1())
			context.AfterFunc(ctx, f(3))
			_ = stop2
			results <- res
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.write(req)
		c.mustResponse("GET", req)
		res := recv(t, results, "the handler")
		if want := []bool{true, false, false, true}; !slices.Equal(res.stops, want) {
			t.Errorf("stop results (stop0, stop0 again, stop0 a third time after another AfterFunc, stop1) = %v, want %v", res.stops, want)
		}
		for _, i := range []int{2, 3} {
			if !closedWithin(res.ran[i], time.Second) {
				t.Errorf("callback %d did not run within 1s of the handler returning", i)
			}
		}
		// The callbacks are started together; the stopped ones get a
		// little more time to show up wrongly.
		for _, i := range []int{0, 1} {
			if closedWithin(res.ran[i], 50*time.Millisecond) {
				t.Errorf("callback %d ran though it was stopped", i)
			}
		}
	})

	t.Run("each request of a connection has its own context", func(t *testing.T) {
		t.Parallel()
		ctxs := make(chan context.Context, 2)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Context().Err() != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
			ctxs <- r.Context()
		}))
		c := dial(t, addr)
		const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		for i := range 2 {
			c.write(req)
			if resp, _ := c.mustResponse("GET", req); resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d on a connection: its context was already canceled when the handler started", i)
			}
		}
		a, b := recv(t, ctxs, "the first handler"), recv(t, ctxs, "the second handler")
		if a == b {
			t.Errorf("two requests of a connection got the same context")
		}
	})

	t.Run("a pipelined request does not cancel the running one", func(t *testing.T) {
		t.Parallel()
		started := make(chan struct{})
		canceled := make(chan bool, 1)
		addr := newH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/first" {
				close(started)
				// Long enough for the client watch (armed after
				// clientGoneDelay) to see the second request arrive.
				canceled <- ctxCanceledWithin(r.Context(), 10*clientGoneDelay)
			}
			_, _ = io.WriteString(w, r.URL.Path)
		}))
		c := dial(t, addr)
		c.write("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
		recv(t, started, "the first handler to start")
		c.write("GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
		if recv(t, canceled, "the first handler") {
			t.Errorf("the context of a running request was canceled when a pipelined request arrived")
		}
		for _, want := range []string{"/first", "/second"} {
			resp, body := c.mustResponse("GET", want)
			if resp.StatusCode != http.StatusOK || body != want {
				t.Errorf("got %s %q, want 200 %q", resp.Status, body, want)
			}
		}
		c.expectOpen("after pipelined requests")
	})
}

func TestPanics(t *testing.T) {
	t.Parallel()

	t.Run("ErrAbortHandler cuts the body short, silently", func(t *testing.T) {
		t.Parallel()
		var logs lockedBuffer
		addr := startH1(t, &Server{ErrorLog: log.New(&logs, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ok" {
				_, _ = io.WriteString(w, "ok")
				return
			}
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "buffered")
			panic(http.ErrAbortHandler)
		})})
		cl := stdClient(t)
		resp, err := cl.Get("http://" + addr + "/abort")
		if err != nil {
			t.Fatalf("the headers were flushed before the panic, but the client got %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("handler panicked with ErrAbortHandler in a chunked body: client read %q and a clean end, want an error", body)
		}
		if !strings.HasPrefix(string(body), "partial") {
			t.Errorf("client read %q before the error, want what was flushed, \"partial\"", body)
		}
		resp, err = cl.Get("http://" + addr + "/ok")
		if err != nil {
			t.Fatalf("server no longer serving after a panic: %v", err)
		}
		resp.Body.Close()
		if l := logs.String(); l != "" {
			t.Errorf("panic(http.ErrAbortHandler) was logged: %q", l)
		}
	})

	t.Run("other panics are logged with their stack", func(t *testing.T) {
		t.Parallel()
		var logs lockedBuffer
		addr := startH1(t, &Server{ErrorLog: log.New(&logs, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ok" {
				_, _ = io.WriteString(w, "ok")
				return
			}
			panic("boom-7f3a")
		})})
		c := dial(t, addr)
		c.write("GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
		c.expectClosed("after a handler panic")
		l := logs.String()
		for _, want := range []string{"boom-7f3a", "goroutine ", "TestPanics"} {
			if !strings.Contains(l, want) {
				t.Errorf("the panic log does not contain %q (value and stack expected):\n%s", want, l)
			}
		}
		c2 := dial(t, addr)
		const req = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
		c2.write(req)
		if resp, body := c2.mustResponse("GET", req); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("after a panic on another connection: got %s %q", resp.Status, body)
		}
	})
}

// TestRequestContextAllocs bounds what a request context costs when one
// callback is registered and stopped, as the proxy does per request: the
// context and its slot's stop function, nothing per AfterFunc.
func TestRequestContextAllocs(t *testing.T) {
	f := func() {}
	allocs := testing.AllocsPerRun(1000, func() {
		ctx := newRequestContext()
		stop := ctx.AfterFunc(f)
		if !stop() {
			t.Fatal("stop of a callback not run reported false")
		}
		ctx.cancel()
	})
	if allocs > 2 {
		t.Errorf("%v allocations per request context, want at most 2", allocs)
	}
}
