package demoapp

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadSettings(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		files   map[string]string
		check   func(t *testing.T, s settings)
		wantErr string
	}{
		{
			name:    "defaults",
			environ: []string{"PORT=4000"},
			check: func(t *testing.T, s settings) {
				want := settings{env: map[string]string{"PORT": "4000"}, port: "4000", version: "dev", healthPath: "/healthz"}
				if diff := cmp.Diff(want, s, cmp.AllowUnexported(settings{})); diff != "" {
					t.Errorf("settings (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:    "VERSION file",
			environ: []string{"PORT=1"},
			files:   map[string]string{"VERSION": "  v1.2.3\n"},
			check:   wantVersion("v1.2.3"),
		},
		{
			name:    "DEMO_VERSION beats the VERSION file",
			environ: []string{"PORT=1", "DEMO_VERSION=v9"},
			files:   map[string]string{"VERSION": "v1"},
			check:   wantVersion("v9"),
		},
		{
			name:    "demo.env beats the environment",
			environ: []string{"PORT=1", "DEMO_VERSION=v9", "KEEP=me"},
			files: map[string]string{"demo.env": "# release v2\n\nDEMO_VERSION = v2\nexport QUOTED=\"a b\"\nSINGLE='x=y'\nDEMO_ERROR_RATE=0.5\nDEMO_WORK=5000\n" +
				"DEMO_BOOT_DELAY=1500ms\nDEMO_FAIL_HEALTH=1\nDEMO_FAIL_BOOT=1\nDEMO_HEALTH_PATH=/up\n"},
			check: func(t *testing.T, s settings) {
				want := settings{
					env: map[string]string{
						"PORT": "1", "DEMO_VERSION": "v2", "KEEP": "me", "QUOTED": "a b", "SINGLE": "x=y",
						"DEMO_ERROR_RATE": "0.5", "DEMO_WORK": "5000", "DEMO_BOOT_DELAY": "1500ms", "DEMO_FAIL_HEALTH": "1",
						"DEMO_FAIL_BOOT": "1", "DEMO_HEALTH_PATH": "/up",
					},
					port: "1", version: "v2", bootDelay: 1500 * time.Millisecond, failBoot: true,
					failHealth: true, errorPPM: 500000, work: 5000, healthPath: "/up",
				}
				if diff := cmp.Diff(want, s, cmp.AllowUnexported(settings{})); diff != "" {
					t.Errorf("settings (-want +got):\n%s", diff)
				}
			},
		},
		{name: "no PORT", environ: nil, wantErr: "PORT is not set: the demo app listens on 127.0.0.1:$PORT"},
		{name: "PORT from demo.env", files: map[string]string{"demo.env": "PORT=5\n"}, check: func(t *testing.T, s settings) {
			if s.port != "5" {
				t.Errorf("port: got %q, want %q", s.port, "5")
			}
		}},
		{name: "bad demo.env line", environ: []string{"PORT=1"}, files: map[string]string{"demo.env": "A=1\nnonsense\n"}, wantErr: `demo.env:2: want KEY=VALUE, got "nonsense"`},
		{name: "bad boot delay", environ: []string{"PORT=1", "DEMO_BOOT_DELAY=5"}, wantErr: `DEMO_BOOT_DELAY: want a duration such as "5s", got "5"`},
		{name: "bad error rate", environ: []string{"PORT=1", "DEMO_ERROR_RATE=1.5"}, wantErr: `DEMO_ERROR_RATE: want a share from 0 to 1 such as 0.1, got "1.5"`},
		{name: "bad work", environ: []string{"PORT=1", "DEMO_WORK=2ms"}, wantErr: `DEMO_WORK: want a number of rounds from 0 to 10000000000 such as 1000000 (about 1ms of CPU), got "2ms"`},
		{name: "bad health path", environ: []string{"PORT=1", "DEMO_HEALTH_PATH=up"}, wantErr: `DEMO_HEALTH_PATH: want a path starting with "/", got "up"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, err := loadSettings(tt.environ, dir)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadSettings: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func wantVersion(v string) func(*testing.T, settings) {
	return func(t *testing.T, s settings) {
		t.Helper()
		if s.version != v {
			t.Errorf("version: got %q, want %q", s.version, v)
		}
	}
}
