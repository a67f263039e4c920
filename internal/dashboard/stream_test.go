package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/state"
)

// countingEngine is an Engine whose reads are counted: each one is a
// query of the app's state database, which deploys write to.
type countingEngine struct{ reads atomic.Int64 }

func (e *countingEngine) Status(context.Context) (deploy.Status, error) {
	e.reads.Add(1)
	return deploy.Status{App: "shop", Active: "r1"}, nil
}

func (e *countingEngine) ListReleases(context.Context) ([]deploy.ReleaseInfo, error) {
	e.reads.Add(1)
	return nil, nil
}

func (e *countingEngine) Deploys(context.Context, int) ([]state.Deploy, error) {
	e.reads.Add(1)
	return nil, nil
}

func (e *countingEngine) Control(deploy.Action) (deploy.ControlAnswer, error) {
	return deploy.ControlAnswer{}, nil
}

func (e *countingEngine) Start(deploy.Request) (*deploy.Run, error) { return nil, nil }

// streamWriter is the ResponseWriter of an /events stream served in a
// synctest bubble: it counts the snapshot events written.
type streamWriter struct {
	hdr       http.Header
	mu        sync.Mutex
	buf       bytes.Buffer
	snapshots int
}

func (w *streamWriter) Header() http.Header { return w.hdr }
func (w *streamWriter) WriteHeader(int)     {}
func (w *streamWriter) Flush()              {}
func (w *streamWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.snapshots += bytes.Count(b, []byte("event: snapshot\n"))
	return len(b), nil
}

func (w *streamWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snapshots
}

// loginCookie logs in to s with the configured token.
func loginCookie(t *testing.T, s *Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/?token="+testToken, nil))
	for _, c := range rec.Result().Cookies() {
		if c.Name == CookieName {
			return c.Value
		}
	}
	t.Fatalf("login: %d, no cookie", rec.Code)
	return ""
}

// openStream serves /events to cookie's session in a goroutine; the
// stream's end closes the returned channel.
func openStream(s *Server, cookie string, ctx context.Context) (*streamWriter, <-chan struct{}) {
	w := &streamWriter{hdr: http.Header{}}
	r := httptest.NewRequest("GET", "/events", nil).WithContext(ctx)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeHTTP(w, r)
	}()
	return w, done
}

// TestStreamsShareSnapshots: however many pages are open, the app's
// state is read once a second, not once a second per page: each read
// queries the state database a deploy writes to, on its one connection.
func TestStreamsShareSnapshots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := &countingEngine{}
		s := New(func() []App { return []App{{Name: "shop", Engine: eng}} }, NewHub(), testToken, slog.New(slog.DiscardHandler))
		cookie := loginCookie(t, s)
		ctx, cancel := context.WithCancel(t.Context())
		const pages, secs = 50, 10
		var ws []*streamWriter
		var dones []<-chan struct{}
		for range pages {
			w, done := openStream(s, cookie, ctx)
			ws, dones = append(ws, w), append(dones, done)
		}
		synctest.Wait()
		time.Sleep(secs*time.Second + time.Millisecond)
		synctest.Wait()
		cancel()
		for _, d := range dones {
			<-d
		}
		for i, w := range ws {
			if n := w.count(); n < secs {
				t.Fatalf("page %d got %d snapshots in %d s, want one a second", i, n, secs)
			}
		}
		// 3 reads per snapshot, one snapshot per second and one at once.
		if n := eng.reads.Load(); n > 3*(secs+1) {
			t.Errorf("%d pages open for %d s read the app's state %d times, want at most %d", pages, secs, n, 3*(secs+1))
		}
	})
}

// TestStreamEndsWithSession: an open /events stream ends when its
// session expires: it shows nothing more to a browser whose login is
// over.
func TestStreamEndsWithSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := &countingEngine{}
		s := New(func() []App { return []App{{Name: "shop", Engine: eng}} }, NewHub(), testToken, slog.New(slog.DiscardHandler))
		cookie := loginCookie(t, s)
		_, done := openStream(s, cookie, t.Context())
		time.Sleep(SessionTTL + 2*time.Second)
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatalf("the /events stream still runs %v after its session expired", 2*time.Second)
		}
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/api/snapshot", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
		s.ServeHTTP(rec, r)
		if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "shop") {
			t.Errorf("snapshot after the session expired: %d %s", rec.Code, rec.Body)
		}
	})
}

// TestStreamToPageThatStopsReading: the stream of a page that stops
// reading (a laptop shut, a stuck tab) ends once a write has waited
// writeTimeout, freeing its connection, instead of waiting for ever.
func TestStreamToPageThatStopsReading(t *testing.T) {
	hub := NewHub()
	s := New(func() []App { return []App{{Name: "shop", Engine: &countingEngine{}}} }, hub, testToken, slog.New(slog.DiscardHandler))
	s.writeTimeout = 300 * time.Millisecond
	closed := make(chan struct{}, 16)
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	cookie := loginCookie(t, s)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\nCookie: %s=%s\r\n\r\n", CookieName, cookie)
	// Far more than the sockets' buffers hold, never read.
	big := strings.Repeat("x", 64<<10)
	obs := hub.Observe("shop")
	for range 400 {
		obs("deploy", deploy.Event{Type: "info", Message: big})
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream to a page that reads nothing still holds its connection 10 s on")
	}
}
