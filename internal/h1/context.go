package h1

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// requestContext is the context of a request: canceled (context.Canceled)
// when its handler returns or its client leaves. It carries no values and
// no deadline.
//
// It costs one allocation: its done channel is made only when Done is
// called, and it implements the AfterFunc method that context.AfterFunc
// and context.WithCancel look for, so that children and callbacks
// registered on it need no goroutine. The first callback registered takes
// an inline slot whose stop function is made with the context; later ones
// cost what they cost with context.AfterFunc.
type requestContext struct {
	canceled atomic.Bool
	mu       sync.Mutex
	done     chan struct{} // guarded by mu; nil until Done
	// slot is the inline callback (nil when free or run); slotStop stops
	// it.
	slot     func()
	slotStop func() bool
	// more holds the callbacks registered while slot was taken.
	more map[*func()]struct{}
}

// closedChan is the Done channel of a context canceled before Done was
// first called.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newRequestContext() *requestContext {
	c := &requestContext{}
	c.slotStop = c.stopSlot
	return c
}

func (c *requestContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *requestContext) Value(any) any               { return nil }

func (c *requestContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.canceled.Load() {
			c.done = closedChan
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

func (c *requestContext) Err() error {
	if c.canceled.Load() {
		return context.Canceled
	}
	return nil
}

// AfterFunc arranges for f to run in its own goroutine once c is canceled
// (at once if it is already); stop unregisters f and reports whether it
// did so before f was started. It has context.AfterFunc's contract.
func (c *requestContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.canceled.Load() {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if c.slot == nil && c.slotStop != nil {
		c.slot = f
		c.mu.Unlock()
		return c.slotStop
	}
	// A copy, so that taking its address does not move f itself to the
	// heap on the common path above.
	g := f
	key := &g
	if c.more == nil {
		c.more = make(map[*func()]struct{})
	}
	c.more[key] = struct{}{}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.more[key]
		delete(c.more, key)
		return ok
	}
}

// stopSlot unregisters the inline callback. The slot is not handed out
// again, so that calling its stop function twice cannot unregister another
// callback.
func (c *requestContext) stopSlot() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := c.slot != nil
	c.slot = nil
	c.slotStop = nil
	return ok
}

// cancel cancels c, closing Done and starting the registered callbacks.
func (c *requestContext) cancel() {
	c.mu.Lock()
	if c.canceled.Swap(true) {
		c.mu.Unlock()
		return
	}
	if c.done != nil {
		close(c.done)
	}
	slot, more := c.slot, c.more
	c.slot, c.more = nil, nil
	// Once canceled, the slot is never handed out again.
	c.slotStop = nil
	c.mu.Unlock()
	if slot != nil {
		go slot()
	}
	for f := range more {
		go (*f)()
	}
}

// String names the context in panics and logs, as context's types do.
func (c *requestContext) String() string { return "h1.requestContext" }

var _ context.Context = (*requestContext)(nil)
