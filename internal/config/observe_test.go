package config

import "testing"

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9200": true,
		"127.8.0.1:9200": true,
		"[::1]:9200":     true,
		"localhost:9200": true,
		"0.0.0.0:9200":   false,
		":9200":          false,
		"[::]:9200":      false,
		"10.0.0.5:9200":  false,
		"example.com:80": false,
		"127.0.0.1":      false, // not host:port
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestDashboardTokenOnLoopback: on loopback the token may be left out
// (logins then come from one-time tokens only).
func TestDashboardTokenOnLoopback(t *testing.T) {
	c := loadString(t, "[app]\nname = \"shop\"\ncommand = \"./run\"\n[dashboard]\nlisten = \"[::1]:9200\"\n")
	if c.Dashboard.Listen != "[::1]:9200" || c.Dashboard.Token != "" {
		t.Errorf("dashboard: got %+v", c.Dashboard)
	}
}
