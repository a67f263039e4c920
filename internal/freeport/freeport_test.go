package freeport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestPickIsBelowTheEphemeralRangeAndFree(t *testing.T) {
	eph, _ := EphemeralRange()
	lo, hi := window(eph)
	if lo > hi {
		t.Skipf("ephemeral range starts at %d: no room below it on this machine", eph)
	}
	seen := map[int]bool{}
	for range 50 {
		port, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		if port < lo || port > hi {
			t.Fatalf("Pick() = %d, want a port in %d–%d, below the ephemeral range at %d", port, lo, hi, eph)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("Pick() = %d, but listening on it fails: %v", port, err)
		}
		ln.Close()
		seen[port] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 picks gave only %d distinct ports: not spread over the window", len(seen))
	}
}

func TestPickSkipsATakenPort(t *testing.T) {
	// A window of one port, taken: every probe fails and Pick falls back to
	// the kernel's choice, which is another port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	if taken <= lowestPort {
		t.Skipf("kernel gave port %d, below the lowest Pick hands out", taken)
	}
	setRange(t, filepath.Join(t.TempDir(), "range"), strconv.Itoa(taken+1)+"\t"+strconv.Itoa(taken+2000))
	old := span
	span = 1
	t.Cleanup(func() { span = old })
	if lo, hi := window(taken + 1); lo != taken || hi != taken {
		t.Fatalf("window(%d) = %d–%d, want only %d", taken+1, lo, hi, taken)
	}
	port, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	if port == taken {
		t.Fatalf("Pick() returned port %d, on which a listener is open", port)
	}
}

func TestWindow(t *testing.T) {
	for _, c := range []struct{ eph, lo, hi int }{
		{32768, 32768 - span, 32767},
		{20000, 20000 - span, 19999},
		{15000, lowestPort, 14999},
		{lowestPort, lowestPort, lowestPort - 1}, // no room: Pick falls back
		{1024, lowestPort, 1023},
	} {
		lo, hi := window(c.eph)
		if lo != c.lo || hi != c.hi {
			t.Errorf("window(%d) = %d–%d, want %d–%d", c.eph, lo, hi, c.lo, c.hi)
		}
	}
}

func TestEphemeralRangeFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		text   string
		lo, hi int
	}{
		{"32768\t60999\n", 32768, 60999},
		{"1024 65535\n", 1024, 65535},
		{"garbage\n", 32768, 60999},
		{"50000 40000\n", 32768, 60999},
		{"", 32768, 60999},
	} {
		setRange(t, filepath.Join(dir, "range"), c.text)
		if lo, hi := EphemeralRange(); lo != c.lo || hi != c.hi {
			t.Errorf("range file %q: EphemeralRange() = %d–%d, want %d–%d", c.text, lo, hi, c.lo, c.hi)
		}
	}
	setRange(t, filepath.Join(dir, "missing"), "")
	os.Remove(rangeFile)
	if lo, hi := EphemeralRange(); lo != 32768 || hi != 60999 {
		t.Errorf("no range file: EphemeralRange() = %d–%d, want Linux's default 32768–60999", lo, hi)
	}
}

// setRange points rangeFile at a file holding text for the test's duration.
func setRange(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	old := rangeFile
	rangeFile = path
	t.Cleanup(func() { rangeFile = old })
}
