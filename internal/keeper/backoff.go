package keeper

import "time"

// Restart pacing of a daemon that dies (see the package doc).
const (
	stableAfter = 10 * time.Second // a daemon that ran this long is restarted at once
	minBackoff  = 250 * time.Millisecond
	maxBackoff  = 8 * time.Second
)

// backoff decides how long to wait before starting a dead daemon again:
// at once after a daemon that ran for stableAfter, then minBackoff,
// doubling up to maxBackoff while it keeps dying young.
type backoff struct {
	next time.Duration // the delay for the next young death
}

// delay returns the wait before the next start of a daemon that ran for
// ranFor, and advances the backoff.
func (b *backoff) delay(ranFor time.Duration) time.Duration {
	if ranFor >= stableAfter {
		b.next = 0
	}
	d := b.next
	switch {
	case b.next == 0:
		b.next = minBackoff
	default:
		b.next = min(2*b.next, maxBackoff)
	}
	return d
}
