// Package freeport picks the loopback TCP ports of the processes cutover
// starts: app instances, and in the demo and tests, the daemon and
// PostgreSQL.
//
// A port handed out by the kernel for a listen on port 0 lies inside the
// ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 by default),
// the range outgoing connections take their source port from. Between the
// moment a port is picked and the moment the new process listens on it,
// any outgoing connection on the machine — the proxy's own connections to
// instances, an app's connections to its database — can be given that
// port, and the process then fails to listen ("address already in use"),
// again and again if it is restarted on the same port while that
// connection lives. Pick chooses below the ephemeral range instead, where
// the kernel never gives out source ports, so only a process that listens
// can take a port there.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// span is how many ports below the ephemeral range Pick chooses from (a
// variable for the tests).
var span = 8192

// lowestPort is the lowest port Pick hands out: the ports below are the
// well-known and commonly registered ones.
const lowestPort = 10000

// tries bounds the random probes before Pick falls back to the kernel's
// choice.
const tries = 64

// rangeFile holds the kernel's ephemeral port range.
var rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// Pick returns a TCP port that nothing listens on at 127.0.0.1 now, chosen
// at random among the span ports just below the ephemeral range. The caller
// hands it to a process that listens on it soon: another process that
// listens can still take it meanwhile, which the caller must survive (the
// supervisor restarts an instance that fails to start).
//
// When the range leaves no room below it, or every probe finds its port
// taken, Pick falls back to the kernel's choice.
func Pick() (int, error) {
	eph, _ := EphemeralRange()
	lo, hi := window(eph)
	for i := 0; lo <= hi && i < tries; i++ {
		port, err := listenAt(lo + rand.IntN(hi-lo+1))
		if err == nil {
			return port, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EACCES) {
			return 0, err
		}
	}
	return listenAt(0)
}

// window returns the ports Pick chooses from, given the first port of the
// ephemeral range; lo > hi when there is no room.
func window(ephemeral int) (lo, hi int) {
	hi = ephemeral - 1
	lo = max(hi-span+1, lowestPort)
	return lo, hi
}

// EphemeralRange returns the kernel's ephemeral port range, the ports
// outgoing connections take their source port from; Linux's default,
// 32768–60999, when it cannot be read.
func EphemeralRange() (lo, hi int) {
	if b, err := os.ReadFile(rangeFile); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && lo >= 1 && hi <= 65535 && lo <= hi {
				return lo, hi
			}
		}
	}
	return 32768, 60999
}

// listenAt listens on 127.0.0.1:port (0: the kernel's choice), closes the
// listener and returns the port it had.
func listenAt(port int) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	return port, nil
}
