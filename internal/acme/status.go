package acme

import (
	"fmt"
	"time"
)

// State is where a host name stands.
type State int

const (
	// Waiting: no certificate to serve yet. Status.Waiting says for what,
	// Status.LastError why the last attempt failed.
	Waiting State = iota
	// Issued: a certificate is served and renewed before it expires.
	Issued
	// Skipped: a name ACME cannot issue for here (a wildcard); it needs a
	// certificate given as files.
	Skipped
)

// String returns "waiting", "issued" or "skipped".
func (s State) String() string {
	switch s {
	case Waiting:
		return "waiting"
	case Issued:
		return "issued"
	case Skipped:
		return "skipped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is one host name's certificate, for `cutover status` and logs.
type Status struct {
	// Name is the host name.
	Name  string
	State State
	// Waiting says what a Waiting name waits for ("a certificate from
	// https://…", "the next attempt after a failure"), or why a name is
	// Skipped. Empty for an Issued name.
	Waiting string
	// NotAfter is when the certificate served expires; zero when none is.
	NotAfter time.Time
	// LastError is the last failure to obtain or renew the name's
	// certificate, and LastErrorAt when it happened; empty once an attempt
	// succeeds.
	LastError   string
	LastErrorAt time.Time
	// NextAttempt is when a Waiting name is tried again after a failure;
	// zero while an attempt runs.
	NextAttempt time.Time
	// Attempts counts the failed attempts to obtain the first certificate.
	Attempts int
}

// String is the status on one line, as logs and `cutover status` show it.
func (s Status) String() string {
	switch s.State {
	case Issued:
		out := fmt.Sprintf("%s: issued, expires %s", s.Name, s.NotAfter.UTC().Format(time.RFC3339))
		if s.LastError != "" {
			out += fmt.Sprintf("; last renewal failed at %s: %s", s.LastErrorAt.UTC().Format(time.RFC3339), s.LastError)
		}
		return out
	case Skipped:
		return fmt.Sprintf("%s: skipped: %s", s.Name, s.Waiting)
	}
	out := fmt.Sprintf("%s: waiting for %s", s.Name, s.Waiting)
	if s.LastError != "" {
		out += fmt.Sprintf("; attempt %d failed: %s", s.Attempts, s.LastError)
	}
	if !s.NextAttempt.IsZero() {
		out += fmt.Sprintf("; next attempt at %s", s.NextAttempt.UTC().Format(time.RFC3339))
	}
	return out
}

// NotReadyError is GetCertificate's error for a managed name that has no
// certificate yet: the handshake fails at once, saying why, rather than
// waiting for the CA.
type NotReadyError struct {
	Status Status
}

func (e *NotReadyError) Error() string {
	return "acme: no certificate yet for " + e.Status.String()
}
