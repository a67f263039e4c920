package fleet

// The drain notice: every instance gets, in CUTOVER_DRAIN_FILE, the path
// of a file that cutover creates when the instance's drain begins. An app
// that holds long-lived connections (websockets, event streams, long
// polls) watches for it and asks its clients to reconnect — which the
// proxy sends to the new release — before drain_timeout cuts them.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/instance"
)

// DrainFileEnv names the environment variable giving each instance the
// path of its drain file.
const DrainFileEnv = "CUTOVER_DRAIN_FILE"

// drainFile is the path of instance id's drain file, under the data
// directory: the same for every process of the instance, a restarted or
// adopted one too.
func drainFile(cfg *config.Config, id string) string {
	return filepath.Join(cfg.DataDir, "drain", id)
}

// AnnounceDrain creates the drain file of each instance in ms, saying when
// the drain began and when what is still open starts being cut. The file
// appears whole (written to a temporary name, then renamed). Failing to
// write it is logged and the drain goes on: the notice is a courtesy to the
// app, the drain itself does not depend on it.
func (f *Fleet) AnnounceDrain(ms []instance.Handle, cutFrom time.Time) {
	cfg := f.cfg
	body := fmt.Sprintf("began=%s\ncut_from=%s\n", time.Now().UTC().Format(time.RFC3339Nano), cutFrom.UTC().Format(time.RFC3339Nano))
	for _, m := range ms {
		path := drainFile(cfg, m.ID())
		if err := writeDrainFile(path, body); err != nil {
			f.log.Warn("drain notice not written; the instance is drained without it", "instance", m.ID(), "err", err)
		}
	}
}

func writeDrainFile(path, body string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write drain file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return fmt.Errorf("write drain file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write drain file: %w", err)
	}
	return nil
}

// ClearDrain removes the drain files of instances that were stopped (or
// are about to start: a file left by a daemon that died during a drain
// must not tell a new process of that instance it is draining).
func (f *Fleet) ClearDrain(ids ...string) {
	cfg := f.cfg
	for _, id := range ids {
		if err := os.Remove(drainFile(cfg, id)); err != nil && !os.IsNotExist(err) {
			f.log.Warn("remove drain file", "instance", id, "err", err)
		}
	}
}

// IDs returns the instance IDs of ms.
func IDs(ms []instance.Handle) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID()
	}
	return out
}

// Drain takes instances out of rotation, tells them (their drain notice),
// waits for their requests in flight, up to timeout, and for their TCP
// connections, up to each TCP port's drain_timeout, then stops them.
func (f *Fleet) Drain(ctx context.Context, hs []instance.Handle, timeout time.Duration) error {
	if len(hs) == 0 {
		return nil
	}
	ms := instances(hs)
	for _, m := range ms {
		m.mu.Lock()
		m.stopped = true
		if m.stopChk != nil {
			m.stopChk()
		}
		m.mu.Unlock()
		if b := m.proxyBackend(); b != nil {
			b.SetHealthy(false)
		}
	}
	deadline := time.Now().Add(timeout)
	f.AnnounceDrain(hs, deadline)
	defer f.ClearDrain(IDs(hs)...)
	tcpDone := make(chan struct{})
	if f.tcp != nil {
		// Their TCP connections get each port's drain_timeout, at the
		// same time as their requests get theirs.
		go func() {
			defer close(tcpDone)
			f.tcp.Drain(ctx, IDs(hs))
		}()
	} else {
		close(tcpDone)
	}
	for time.Now().Before(deadline) {
		busy := false
		for _, m := range ms {
			if b := m.proxyBackend(); b != nil && b.InFlight() > 0 {
				busy = true
			}
		}
		if !busy {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	<-tcpDone
	return f.stopInstances(ctx, ms)
}
