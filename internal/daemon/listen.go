package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// sdListenFDsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
const sdListenFDsStart = 3

// inheritedListeners returns the listening sockets passed by systemd
// socket activation (or anything speaking its protocol: LISTEN_PID naming
// this process, LISTEN_FDS counting the descriptors from fd 3,
// LISTEN_FDNAMES optionally naming them), by name. It unsets the variables
// so the app's instances do not see them.
//
// This is how the proxy port survives a restart of the daemon — even a
// SIGKILL: the socket belongs to systemd, connections queue in its backlog
// while no daemon runs, and the next daemon accepts them. Without it, a
// daemon restart refuses connections for as long as it takes.
//
// A daemon started by cutover's keeper (underKeeper) takes LISTEN_PID
// naming its parent: the keeper cannot know its child's pid before the
// child runs (see package keeper).
func inheritedListeners(underKeeper bool) (map[string]net.Listener, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	if fds == "" {
		return nil, nil
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pid != strconv.Itoa(os.Getpid()) && (!underKeeper || pid != strconv.Itoa(os.Getppid())) {
		return nil, nil // meant for another process
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("LISTEN_FDS=%q: want a count of descriptors", fds)
	}
	out := map[string]net.Listener{}
	for i := 0; i < n; i++ {
		name := "proxy"
		if i == 1 {
			name = "preview"
		}
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		f := os.NewFile(uintptr(sdListenFDsStart+i), name)
		ln, err := net.FileListener(f)
		f.Close() // FileListener dup'ed it
		if err != nil {
			return nil, fmt.Errorf("inherited socket %d (%s): %w", sdListenFDsStart+i, name, err)
		}
		out[name] = ln
	}
	return out, nil
}
