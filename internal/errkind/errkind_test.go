package errkind

import (
	"net/http"
	"testing"
)

func TestTable(t *testing.T) {
	tests := []struct {
		kind   Kind
		status int
		exit   int
	}{
		{Busy, http.StatusConflict, ExitFailed},
		{Config, http.StatusUnprocessableEntity, ExitUsage},
		{Usage, http.StatusBadRequest, ExitUsage},
		{Refused, http.StatusPreconditionFailed, ExitFailed},
		{Aborted, http.StatusPreconditionFailed, ExitFailed},
		{NotFound, http.StatusNotFound, ExitFailed},
		{Failed, http.StatusInternalServerError, ExitFailed},
		{"something new", http.StatusInternalServerError, ExitFailed},
	}
	for _, tt := range tests {
		if got := tt.kind.HTTPStatus(); got != tt.status {
			t.Errorf("%s: HTTP status %d, want %d", tt.kind, got, tt.status)
		}
		if got := tt.kind.ExitCode(); got != tt.exit {
			t.Errorf("%s: exit code %d, want %d", tt.kind, got, tt.exit)
		}
	}
	if len(table) != len(tests)-1 {
		t.Errorf("the table has %d kinds, the test %d: test the new one", len(table), len(tests)-1)
	}
}
