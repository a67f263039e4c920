package supervisor

import (
	"regexp"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// shellScript returns what `/bin/sh -c` runs for command: the command as
// written, with `exec` put before its last simple command, so that the app
// replaces the shell: the instance's pid is the app's, and its signals
// reach the app rather than a shell that would not forward them. Debian's
// /bin/sh (dash) forks even the only command of `sh -c 'app'`, and the
// former "exec " + command broke the shell's own syntax: `VAR=x ./app`
// exited 127 (exec took VAR=x for the program) and in `a && b` only a ran.
//
// The last simple command is the command itself (`VAR=x ./app` becomes
// `VAR=x exec ./app`, which exports VAR to the app), or the last one of a
// list: `cd sub && ./app`, `a; b`, `a || b`, `{ a; b; }`. It is left alone
// (the shell stays, as parent of the app, in the instance's process group)
// when it runs in the background or a pipeline, is negated, is a shell
// builtin or a function the command defines, or already starts with exec;
// and the whole command is left alone when it does not parse (the shell
// then reports the mistake in the instance's log). The command's text is
// kept byte for byte: "exec " is inserted, nothing reformatted.
func shellScript(command string) string {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(command), "")
	if err != nil || len(f.Stmts) == 0 {
		return command
	}
	funcs := map[string]bool{}
	syntax.Walk(f, func(n syntax.Node) bool {
		if fd, ok := n.(*syntax.FuncDecl); ok {
			funcs[fd.Name.Value] = true
		}
		return true
	})
	call := lastSimple(f.Stmts[len(f.Stmts)-1])
	if call == nil {
		return command
	}
	if name := call.Args[0].Lit(); shellBuiltins[name] || funcs[name] {
		return command
	}
	off := int(call.Args[0].Pos().Offset())
	return command[:off] + "exec " + command[off:]
}

// lastSimple returns the simple command that stmt runs last, when the
// shell can exec it.
func lastSimple(stmt *syntax.Stmt) *syntax.CallExpr {
	if stmt.Background || stmt.Coprocess || stmt.Negated {
		return nil
	}
	switch c := stmt.Cmd.(type) {
	case *syntax.CallExpr:
		if len(c.Args) == 0 {
			return nil // only assignments
		}
		return c
	case *syntax.BinaryCmd:
		if c.Op == syntax.AndStmt || c.Op == syntax.OrStmt {
			return lastSimple(c.Y)
		}
	case *syntax.Block:
		if len(c.Stmts) > 0 {
			return lastSimple(c.Stmts[len(c.Stmts)-1])
		}
	}
	return nil
}

// shellBuiltins are the commands a shell runs itself, which exec cannot
// run as a program (or should not: exec is already there).
var shellBuiltins = map[string]bool{
	":": true, ".": true, "alias": true, "bg": true, "break": true, "cd": true,
	"command": true, "continue": true, "eval": true, "exec": true, "exit": true,
	"export": true, "fg": true, "getopts": true, "hash": true, "jobs": true,
	"local": true, "read": true, "readonly": true, "return": true, "set": true,
	"shift": true, "source": true, "times": true, "trap": true, "type": true,
	"ulimit": true, "umask": true, "unalias": true, "unset": true, "wait": true,
}

// portRef matches $PORT and ${PORT}, not $PORTS.
var portRef = regexp.MustCompile(`\$(?:\{PORT\}|PORT\b)`)

// expandPort replaces $PORT and ${PORT} in the value of each "KEY=value"
// of env by port, and only them: other $ stay as written (an environment
// value is no shell word, and a secret may hold a $).
func expandPort(env []string, port int) []string {
	p := strconv.Itoa(port)
	out := make([]string, len(env))
	for i, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.Contains(v, "$") {
			kv = k + "=" + portRef.ReplaceAllLiteralString(v, p)
		}
		out[i] = kv
	}
	return out
}
