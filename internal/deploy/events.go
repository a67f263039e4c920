package deploy

import (
	"errors"
	"fmt"
	"time"
)

// Step is a step of a deploy. Its text form (String, and in JSON) is its
// name: "lock", "prepare", ….
type Step uint8

// The steps, in the order a deploy runs them.
const (
	StepLock Step = iota + 1
	StepPrepare
	StepCheck
	StepExpand
	StepBoot
	StepPreview
	StepHook
	StepSwitch
	StepShift
	StepWatch
	StepDrain
	StepContract
	StepFinish
	StepSchema  // the schema preview: the database changes tried on a scratch copy
	StepMigrate // the release phase: the app's own migrate_command

	// The steps of a held switch (held.go), which replaces boot, preview
	// and shift for strategy "stop-first": hold requests, stop the old
	// release, run the release phase, boot the new release, switch. The
	// restore step starts the old release again when the held switch
	// cannot finish.
	StepHold
	StepStop
	StepReleasePhase
	StepHeldBoot
	StepRestore
)

var stepText = [...]string{
	StepLock: "lock", StepPrepare: "prepare", StepCheck: "check", StepExpand: "expand", StepBoot: "boot",
	StepPreview: "preview", StepHook: "hook", StepSwitch: "switch", StepShift: "shift", StepWatch: "watch",
	StepDrain: "drain", StepContract: "contract", StepFinish: "finish",
	StepSchema: "schema", StepMigrate: "migrate",
	StepHold: "hold", StepStop: "stop", StepReleasePhase: "release_phase", StepHeldBoot: "held_boot", StepRestore: "restore",
}

// String returns the step's name; "" for the zero Step (no step).
func (s Step) String() string {
	if int(s) < len(stepText) {
		return stepText[s]
	}
	return fmt.Sprintf("step(%d)", uint8(s))
}

// MarshalText writes the step's name.
func (s Step) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a step's name. A name it does not know (from a newer
// daemon) reads as the zero Step rather than failing the whole event.
func (s *Step) UnmarshalText(b []byte) error {
	*s = 0
	for i, n := range stepText {
		if n != "" && n == string(b) {
			*s = Step(i)
		}
	}
	return nil
}

// Event is one thing that happened during a deploy, streamed to the CLI as
// it happens.
type Event struct {
	Time time.Time `json:"time"`
	// Type is "step" (a step started or ended), "info" (a remark),
	// "preview" (the release is ready for preview),
	// "waiting" (a boot still waiting for Instance, every few seconds, with
	// its latest health check), "log" (lines of an instance's log) or
	// "result" (the last event).
	Type string `json:"type"`
	// Step is the step the event belongs to.
	Step Step `json:"step,omitempty"`
	// Status of a step event: "start", "ok", "failed" or "skipped".
	Status string `json:"status,omitempty"`
	// DurationMS is how long the step took (step ok/failed events).
	DurationMS float64 `json:"duration_ms,omitempty"`
	// Message is a one-line human description.
	Message string `json:"message,omitempty"`
	// Lines are log lines (log events).
	Lines []string `json:"lines,omitempty"`
	// Instance names the instance of a log or waiting event.
	Instance string `json:"instance,omitempty"`
	// Result fields (result events).
	OK       bool   `json:"ok,omitempty"`
	Release  string `json:"release,omitempty"`
	DeployID int64  `json:"deploy_id,omitempty"`
	// PreviewToken and PreviewLinks (preview events) are the secret a
	// request must carry to reach the release in preview, and links that
	// carry it, one per proxy listener.
	PreviewToken string   `json:"preview_token,omitempty"`
	PreviewLinks []string `json:"preview_links,omitempty"`
	// ErrorKind classifies a failed result: "busy", "config", "usage",
	// "failed". Empty on success.
	ErrorKind string `json:"error_kind,omitempty"`
}

// Emitter receives events. It must not block for long: the deploy waits
// for it.
type Emitter func(Event)

// ErrBusy is returned when a deploy is asked for while another runs.
var ErrBusy = errors.New("another deploy is in progress")

// BusyError says which deploy holds the lock.
type BusyError struct {
	Running Progress
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("another %s is in progress (deploy #%d of %s, step %s, started %s ago); wait for it or check `cutover status`",
		e.Running.Kind, e.Running.DeployID, e.Running.Release, e.Running.Step, time.Since(e.Running.StartedAt).Round(time.Second))
}

func (e *BusyError) Unwrap() error { return ErrBusy }

// Progress describes the deploy in flight.
type Progress struct {
	DeployID  int64     `json:"deploy_id"`
	Kind      string    `json:"kind"`
	Release   string    `json:"release"`
	From      string    `json:"from"`
	Step      string    `json:"step"` // the step's name (Step.String)
	StartedAt time.Time `json:"started_at"`
	// Detail says where a multi-step shift is: "canary 25%", "batch 2/4",
	// "preview", "watch".
	Detail string `json:"detail,omitempty"`
	// Strategy is the deploy's strategy: "bluegreen", "rolling",
	// "canary" or "stop-first".
	Strategy string `json:"strategy,omitempty"`
	// ShiftStep and ShiftSteps say where a canary or rolling shift is:
	// its step ShiftStep (from 1) of ShiftSteps; 0 before the shift.
	ShiftStep  int `json:"shift_step,omitempty"`
	ShiftSteps int `json:"shift_steps,omitempty"`
	// Paused: the operator paused the deploy; it holds where it is (a
	// canary step, a batch, the watch, a preview) or, in the steps before
	// traffic moves, before its next step.
	Paused bool `json:"paused,omitempty"`
	// PreviewToken is the token that reaches the release in preview,
	// while the preview step runs.
	PreviewToken string `json:"preview_token,omitempty"`
}

// RefusedError is a deploy or rollback refused before it touched anything
// (e.g. a rollback to a release whose schema is gone). It maps to exit 1.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }
