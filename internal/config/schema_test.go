package config

import "testing"

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"interval", "intervall", 1},
		{"stop_sginal", "stop_signal", 2}, {"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	app := schema.fields["app"]
	tests := []struct {
		parent string
		s      *spec
		name   string
		want   string
	}{
		{"app", app, "comand", "app.command"},
		{"app", app, "stop_sginal", "app.stop_signal"},
		{"app", app, "timeout", "app.health.timeout"},
		{"", schema, "proxi", "proxy"},
		{"", schema, "listen", "proxy.listen"},
		{"app", app, "zzzzzz", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.parent, tt.s, tt.name); got != tt.want {
			t.Errorf("suggest(%q, %q) = %q, want %q", tt.parent, tt.name, got, tt.want)
		}
	}
}
