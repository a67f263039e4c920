package proxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
)

// pipes registers n open connections with r, as n requests in flight,
// and returns when each one's peer saw it closed, by index.
func pipes(r *release, n int) (closedAt []time.Time, wait func()) {
	closedAt = make([]time.Time, n)
	var wg sync.WaitGroup
	for i := range n {
		a, b := net.Pipe()
		r.add(a)
		r.inFlight.Add(1)
		wg.Go(func() {
			io.Copy(io.Discard, b)
			closedAt[i] = time.Now()
		})
	}
	return closedAt, wg.Wait
}

func TestCutPacesCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelease("r1", DefaultCookie, time.Now)
		const n, pace = 4, 2 * time.Second
		closedAt, wait := pipes(r, n)
		start := time.Now()
		if got := r.cut(pace); got != n {
			t.Errorf("cut: got %d, want %d", got, n)
		}
		wait()
		slices.SortFunc(closedAt, func(a, b time.Time) int { return a.Compare(b) })
		for i, at := range closedAt {
			if want := pace * time.Duration(i) / n; at.Sub(start) != want {
				t.Errorf("close %d at %v, want %v", i, at.Sub(start), want)
			}
		}
		if took := time.Since(start); took != pace*(n-1)/n {
			t.Errorf("cut took %v, want %v", took, pace*(n-1)/n)
		}
	})
}

func TestCutStopsPacingWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelease("r1", DefaultCookie, time.Now)
		const n, pace = 4, 4 * time.Second
		closedAt, wait := pipes(r, n)
		// Everything else ends on its own just after the first close.
		go func() {
			time.Sleep(pace / n / 2)
			for range n {
				r.finish()
			}
		}()
		start := time.Now()
		r.cut(pace)
		if took := time.Since(start); took != pace/n/2 {
			t.Errorf("cut took %v, want %v (it stops once nothing is in flight)", took, pace/n/2)
		}
		r.closeIdle()
		for c := range r.conns {
			c.Close()
		}
		wait()
		slices.SortFunc(closedAt, func(a, b time.Time) int { return a.Compare(b) })
		for i, at := range closedAt {
			want := pace / n / 2 // closed by the test
			if i == 0 {
				want = 0 // the first, by cut
			}
			if at.Sub(start) != want {
				t.Errorf("close %d at %v, want %v", i, at.Sub(start), want)
			}
		}
	})
}

func TestCutWithoutPaceClosesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelease("r1", DefaultCookie, time.Now)
		closedAt, wait := pipes(r, 3)
		start := time.Now()
		r.cut(0)
		wait()
		for i, at := range closedAt {
			if at != start {
				t.Errorf("close %d at %v, want at once", i, at.Sub(start))
			}
		}
	})
}

// frame returns a websocket frame header for a payload of n bytes, masked
// or not, followed by the payload.
func frame(n int, masked bool) []byte {
	var h []byte
	switch {
	case n < 126:
		h = []byte{0x82, byte(n)}
	case n < 1<<16:
		h = []byte{0x82, 126, 0, 0}
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h = make([]byte, 10)
		h[0], h[1] = 0x82, 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	if masked {
		h[1] |= 0x80
		h = append(h, 1, 2, 3, 4)
	}
	return append(h, make([]byte, n)...)
}

func TestFrameReaderBoundaries(t *testing.T) {
	var stream []byte
	var ends []int
	for _, n := range []int{0, 1, 125, 126, 300, 65535, 65536, 70000} {
		for _, masked := range []bool{false, true} {
			stream = append(stream, frame(n, masked)...)
			ends = append(ends, len(stream))
		}
	}
	for _, chunk := range []int{1, 2, 3, 7, 100, 4096, len(stream)} {
		var fr frameReader
		end := 0
		for off := 0; off < len(stream); off += chunk {
			next := min(off+chunk, len(stream))
			fr.feed(stream[off:next])
			want := slices.Contains(ends, next)
			if got := fr.atBoundary(); got != want {
				t.Fatalf("chunks of %d, after %d bytes: at boundary %v, want %v", chunk, next, got, want)
			}
			end = next
		}
		if end != len(stream) || !fr.atBoundary() {
			t.Errorf("chunks of %d: stream not ended on a boundary", chunk)
		}
	}
}

// Open websockets and event streams of a drained release are closed one
// after the other over the pace, not all at once; websocket clients get a
// close frame 1001.
func TestDrainPacesLongLivedConnections(t *testing.T) {
	wsAddr, _ := echoBackend(t, "old")
	_, sseAddr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	p, url := startProxy(t, Options{})
	addHealthy(p, "ws", "r1", wsAddr)
	p.SetActive("r1")
	const nWS, nSSE = 3, 3
	var mu sync.Mutex
	var closes []time.Time
	var wg sync.WaitGroup
	for range nWS {
		c, _ := dialWS(t, url)
		if got := echo(t, c, "hi"); got != "old:hi" {
			t.Fatalf("echo: got %q, want %q", got, "old:hi")
		}
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(waitLimit))
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
				t.Errorf("websocket ended with %v, want a close frame %d", err, websocket.CloseGoingAway)
			}
			mu.Lock()
			closes = append(closes, time.Now())
			mu.Unlock()
		})
	}
	p.RemoveBackend("ws")
	addHealthy(p, "sse", "r1", sseAddr)
	for range nSSE {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := newClient(t).Do(req)
		if err != nil {
			t.Fatalf("GET stream: %v", err)
		}
		br := bufio.NewReader(resp.Body)
		if line, err := br.ReadString('\n'); err != nil || line != "data: hello\n" {
			t.Fatalf("stream: got %q, %v", line, err)
		}
		wg.Go(func() {
			defer resp.Body.Close()
			if _, err := io.ReadAll(br); err == nil {
				t.Errorf("stream ended cleanly, want it cut")
			}
			mu.Lock()
			closes = append(closes, time.Now())
			mu.Unlock()
		})
	}
	p.SetActive("")

	const pace = 600 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := p.Drain(ctx, "r1", pace)
	took := time.Since(start)
	wg.Wait()
	if res.Cut != nWS+nSSE {
		t.Errorf("cut: got %d, want %d", res.Cut, nWS+nSSE)
	}
	// Six closes over 600ms: one every 100ms, the last 500ms after the
	// first. Generous bounds: the machine may be slow, never faster.
	slices.SortFunc(closes, func(a, b time.Time) int { return a.Compare(b) })
	if spread := closes[len(closes)-1].Sub(closes[0]); spread < pace/2 {
		t.Errorf("closes spread over %v, want about %v (paced)", spread, pace*5/6)
	}
	for i := 1; i < len(closes); i++ {
		if gap := closes[i].Sub(closes[i-1]); gap < pace/6/3 {
			t.Errorf("close %d came %v after the one before, want about %v", i, gap, pace/6)
		}
	}
	if took > waitLimit/2 {
		t.Errorf("drain took %v", took)
	}
}
