// Command gatehouse is the Gatehouse authentication server and its admin
// tool. Run "gatehouse help" for the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if err != errUsage {
			fmt.Fprintln(os.Stderr, "gatehouse:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if err == errUsage {
		return 2
	}
	return 1
}

// streams are the standard streams a command uses; tests pass buffers.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}
