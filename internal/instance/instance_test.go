package instance

import "testing"

func TestNumber(t *testing.T) {
	tests := []struct {
		id, release string
		want        int
	}{
		{"20261205T101010-v2-1", "20261205T101010-v2", 1},
		{"20261205T101010-v2-12", "20261205T101010-v2", 12},
		{"20261205T101010-v2-x", "20261205T101010-v2", 0},
		{"20261205T101010-v2", "20261205T101010-v2", 0},
		{"other-3", "20261205T101010-v2", 0},
		{"20261205T090000-v1-1", "20261205T101010-v2", 0}, // read as 20261205 before
		{"20261205T101010-v2-1x", "20261205T101010-v2", 0},
	}
	for _, tt := range tests {
		if got := Number(tt.id, tt.release); got != tt.want {
			t.Errorf("Number(%q, %q) = %d, want %d", tt.id, tt.release, got, tt.want)
		}
	}
}
