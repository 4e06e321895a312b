package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/gatehouse-auth/gatehouse/bench"
)

// benchCmd is `gatehouse bench`: it measures a running deployment over
// HTTP, prints the table, and writes bench.json and bench.svg.
func benchCmd(ctx context.Context, args []string, io streams) error {
	fs := flag.NewFlagSet("gatehouse bench", flag.ContinueOnError)
	fs.SetOutput(io.stderr)
	cfg := bench.Config{}
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the running Gatehouse deployment")
	fs.StringVar(&cfg.AdminKey, "admin-key", "", "the deployment's admin key, for the forced-logout path (default $GATEHOUSE_ADMIN_KEY)")
	fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "how long each verify mode is measured")
	fs.IntVar(&cfg.Concurrency, "concurrency", bench.DefaultConcurrency, "concurrent verify clients")
	fs.IntVar(&cfg.Repeat, "repeat", bench.DefaultRepeat, "revocations measured per path")
	fs.DurationVar(&cfg.RevokeWait, "revoke-wait", bench.DefaultRevokeWait, "how long a revoked credential is polled at most")
	fs.StringVar(&cfg.Username, "username", "", "a dedicated existing user to bench with: forced logout ends all its sessions (default: create bench-<random> by sign-up)")
	fs.StringVar(&cfg.Password, "password", "", "that user's password (default $GATEHOUSE_BENCH_PASSWORD)")
	out := fs.String("out", bench.DefaultOut, "directory for bench.json and bench.svg (the lab shows the latest from here or <data-dir>/bench)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: gatehouse bench [flags]\n\nMeasures a running deployment: verify cost per mode, bytes per request, revocation delay per path.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package printed why, with the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(io.stderr, "gatehouse bench: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if cfg.AdminKey == "" {
		cfg.AdminKey = getenv("GATEHOUSE_ADMIN_KEY")
	}
	if cfg.Password == "" {
		cfg.Password = getenv("GATEHOUSE_BENCH_PASSWORD")
	}
	if cfg.Username == "" && cfg.Password != "" {
		cfg.Password = "" // the environment's password is only for a named user
	}
	if !bench.IsLoopback(cfg.URL) && strings.HasPrefix(strings.ToLower(cfg.URL), "http://") {
		fmt.Fprintln(io.stderr, "gatehouse bench: warning: plain HTTP to a host that is not loopback: the bench user's password travels in clear")
	}
	cfg.Progress = io.stderr
	if f, ok := io.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg.Terminal = true
	}

	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := res.WriteTable(io.stdout); err != nil {
		return err
	}
	if err := bench.Save(*out, res); err != nil {
		return err
	}
	fmt.Fprintf(io.stderr, "wrote %s and %s\n", filepath.Join(*out, bench.JSONFile), filepath.Join(*out, bench.SVGFile))
	return nil
}
