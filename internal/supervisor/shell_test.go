package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestShellScript(t *testing.T) {
	cases := []struct{ command, want string }{
		{"./app", "exec ./app"},
		{"  java -jar app.jar --port $PORT", "  exec java -jar app.jar --port $PORT"},
		{"VAR=x ./app", "VAR=x exec ./app"},
		{"A=1 B='2 3' ./app", "A=1 B='2 3' exec ./app"},
		{"cd sub && ./app", "cd sub && exec ./app"},
		{"./migrate && ./app >>out.log 2>&1", "./migrate && exec ./app >>out.log 2>&1"},
		{"a; b", "a; exec b"},
		{"a || b", "a || exec b"},
		{"a\nb # comment", "a\nexec b # comment"},
		{"{ a; b; }", "{ a; exec b; }"},
		{"'/opt/my app/bin' serve", "exec '/opt/my app/bin' serve"},
		{"$APP serve", "exec $APP serve"},
		{"exec ./app", "exec ./app"},
		{"./app &", "./app &"},
		{"a | b", "a | b"},
		{"! ./app", "! ./app"},
		{"./app; wait", "./app; wait"},
		{"cd sub", "cd sub"},
		{"serve() { ./app; }; serve", "serve() { ./app; }; serve"},
		{"if true; then ./app; fi", "if true; then ./app; fi"},
		{"VAR=x", "VAR=x"},
		{"./app 'unterminated", "./app 'unterminated"},
	}
	for _, c := range cases {
		if got := shellScript(c.command); got != c.want {
			t.Errorf("shellScript(%q) = %q, want %q", c.command, got, c.want)
		}
	}
}

// TestCommandShellForms runs commands written the way a Procfile or
// systemd's shell form allows, and checks that each runs, that the app is
// the instance's process (its pid, reached by the stop signal), and that
// the shell parts took effect.
func TestCommandShellForms(t *testing.T) {
	cases := []struct {
		name, command, greeting, subdir string
	}{
		{"assignment", greetingEnv + "='set by the command' APP", "set by the command", ""},
		{"cd and", "mkdir -p sub && cd sub && APP", "hello from cutover", "sub"},
		{"and list", "true && APP", "hello from cutover", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newNotifier(t)
			s, _ := newSupervisor(t, Options{})
			spec := childSpec(t, "http", n)
			spec.Command = strings.Replace(c.command, "APP", spec.Command, 1)
			inst, err := s.Start(spec)
			if err != nil {
				t.Fatal(err)
			}
			pid := n.ready(t)[0]
			st := inst.Status()
			if st.PID != pid {
				t.Errorf("instance pid %d, app pid %d: the shell did not exec the app", st.PID, pid)
			}
			info := get(t, st.Port, "/")
			if info.Greeting != c.greeting {
				t.Errorf("got greeting %q, want %q", info.Greeting, c.greeting)
			}
			wantDir, _ := filepath.EvalSymlinks(filepath.Join(spec.Dir, c.subdir))
			if gotDir, _ := filepath.EvalSymlinks(info.Dir); gotDir != wantDir {
				t.Errorf("got working directory %q, want %q", gotDir, wantDir)
			}
			fd := pidfdOf(t, pid)
			if err := inst.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !exitsWithin(fd, 0) {
				t.Fatalf("pid %d still runs after Stop returned", pid)
			}
			if st := inst.Status(); st.LastExit != "exit status 0" {
				t.Errorf("got last exit %q, want %q: the app's own exit after its graceful stop", st.LastExit, "exit status 0")
			}
			if b, _ := os.ReadFile(spec.LogPath); !strings.Contains(string(b), "got TERM") {
				t.Errorf("got log %q, want the app to have handled SIGTERM", b)
			}
		})
	}
}

func TestPortExpandedInEnv(t *testing.T) {
	n := newNotifier(t)
	s, _ := newSupervisor(t, Options{})
	spec := childSpec(t, "http", n)
	spec.Env = append(spec.Env, "LISTEN=127.0.0.1:$PORT", "BRACED=${PORT}x", "OTHER=$PORTS", "SECRET=pa$$w$rd")
	inst, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	n.ready(t)
	port := inst.Status().Port
	info := get(t, port, "/")
	p := info.Port
	for _, want := range []string{"LISTEN=127.0.0.1:" + p, "BRACED=" + p + "x", "OTHER=$PORTS", "SECRET=pa$$w$rd"} {
		if !slices.Contains(info.Env, want) {
			t.Errorf("environment lacks %q", want)
		}
	}
}
