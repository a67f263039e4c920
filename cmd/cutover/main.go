// Command cutover ships new versions of a web application with zero downtime.
//
// Everything lives in internal/; main only wires signals to a context and
// turns the CLI's error into an exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cutover/cutover/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
