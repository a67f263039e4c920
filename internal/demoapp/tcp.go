package demoapp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// TCPPortEnv names the variable holding the port of the demo app's TCP
// echo listener: give it as port_env of a [[app.tcp]] entry.
const TCPPortEnv = "DEMO_TCP_PORT"

// serveTCP runs the TCP echo listener on 127.0.0.1:$DEMO_TCP_PORT, when
// set, until ctx ends: each connection gets one line naming the app's
// version, instance and pid ("demo <version> <instance> <pid>"), then
// every line it sends back. It returns a function that stops it and
// closes what is open, and waits for that.
func (a *app) serveTCP(ctx context.Context) (stop func(), err error) {
	port := a.s.env[TCPPortEnv]
	if port == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return nil, fmt.Errorf("demo app %s: tcp listen ($%s): %w", a.s.version, TCPPortEnv, err)
	}
	instance := filepath.Base(a.s.env["CUTOVER_DRAIN_FILE"])
	if a.s.env["CUTOVER_DRAIN_FILE"] == "" {
		instance = "-"
	}
	hello := fmt.Sprintf("demo %s %s %d\n", a.s.version, instance, os.Getpid())
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				if _, err := c.Write([]byte(hello)); err != nil {
					return
				}
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadBytes('\n')
					if len(line) > 0 {
						if _, werr := c.Write(line); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}
