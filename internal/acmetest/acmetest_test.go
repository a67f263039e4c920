package acmetest

import (
	"bytes"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// TestStartStop starts a Pebble, and again after a stop: a new CA with a
// new root each time.
func TestStartStop(t *testing.T) {
	p := New(t, Config{HTTPPort: 5002, TLSPort: 5001})
	p.Start()
	first := p.IssuerRootPEM()
	if !bytes.Contains(first, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("root: got %q", first)
	}
	p.Stop()
	p.Start()
	if second := p.IssuerRootPEM(); bytes.Equal(first, second) {
		t.Error("Pebble restarted with the same root")
	}
}
