package release

import "context"

// RunShell runs command with /bin/sh -c in dir, with exactly env as its
// environment, in a process group of its own that is killed when ctx ends.
// Each output line (stdout and stderr merged) goes to out as it comes,
// tagged with stream. It returns the last lines of output and the exit
// code; err is set only when the command could not run or ctx ended.
// started, if not nil, is told of the command's process group (see
// Started). Deploy hooks use it, as test and build commands do.
func RunShell(ctx context.Context, stream, dir string, env []string, command string, out func(stream, line string), started Started) (tail []string, code int, err error) {
	return runStreamed(ctx, stream, dir, env, out, started, "/bin/sh", "-c", command)
}
