package lowprio

import (
	"errors"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDo(t *testing.T) {
	runtime.LockOSThread() // the caller's thread, to compare before and after
	defer runtime.UnlockOSThread()
	base, err := threadNice()
	if err != nil {
		t.Fatal(err)
	}
	if base > 15 {
		t.Skipf("the test runs at nice %d: too close to the lowest to see a change", base)
	}
	var inside int
	boom := errors.New("boom")
	spawned := make(chan int, 8)
	err = Do(3, func() error {
		inside, err = threadNice()
		if err != nil {
			t.Error(err)
		}
		// Goroutines started here and blocked in system calls make the
		// runtime start new threads while this one is niced: they must
		// not inherit its priority.
		for range cap(spawned) {
			go func() {
				unix.Nanosleep(&unix.Timespec{Nsec: 20e6}, nil) //nolint:errcheck // a pause that holds the thread
				n, _ := threadNice()
				spawned <- n
			}()
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	if inside != base+3 {
		t.Errorf("fn ran at nice %d, want %d (the caller's %d + 3)", inside, base+3, base)
	}
	for range cap(spawned) {
		if n := <-spawned; n != base {
			t.Errorf("a goroutine started inside fn ran at nice %d, want %d", n, base)
		}
	}
	if after, _ := threadNice(); after != base {
		t.Errorf("the caller's thread is at nice %d after Do, want %d", after, base)
	}
	// Other goroutines do not inherit the lowered priority: many of them,
	// started after Do, all run at the base value.
	for range 50 {
		got := make(chan int)
		go func() {
			n, _ := threadNice()
			got <- n
		}()
		if n := <-got; n != base {
			t.Fatalf("a goroutine after Do ran at nice %d, want %d", n, base)
		}
	}

	if err := Do(30, func() error {
		if n, _ := threadNice(); n != maxNice {
			t.Errorf("nice capped: fn ran at %d, want %d", n, maxNice)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}

	ran := false
	if err := Do(0, func() error {
		ran = true
		if n, _ := threadNice(); n != base {
			t.Errorf("nice 0: fn ran at %d, want the caller's %d", n, base)
		}
		return nil
	}); err != nil || !ran {
		t.Errorf("nice 0: ran %v, err %v; want fn run inline", ran, err)
	}
}
