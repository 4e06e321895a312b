package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
)

// errUsage reports a usage error whose message was already printed.
var errUsage = errors.New("usage")

const usage = `Gatehouse: session and token authentication.

Usage:
  gatehouse serve [flags]                  run the server (--dev for a developer machine)
  gatehouse user create --username NAME    create a user (password read from stdin)
  gatehouse user roles --username NAME --set admin,ops
  gatehouse user list                      list users
  gatehouse keys rotate                    publish a new signing key (signs after --key-publish-delay)
  gatehouse keys remove --kid KID          emergency removal of a compromised key
  gatehouse keys list                      list signing keys and their lifecycle
  gatehouse backup --to FILE               online copy of the SQLite database (safe while serving)
  gatehouse migrate --from FILE            copy SQLite to --to-postgres URL and --to-redis URL (server stopped)
  gatehouse bench --url URL                measure a running deployment (verify cost, revocation delay)
  gatehouse version                        print the version

Every command takes the configuration flags (see "gatehouse serve -help");
each flag can also be set as GATEHOUSE_<NAME> or in a YAML file (--config).
`

// run is the whole program: main only adds the process's signals, streams
// and exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	io := streams{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], io)
	case "user":
		return userCmd(ctx, args[1:], io)
	case "keys":
		return keysCmd(ctx, args[1:], io)
	case "backup":
		return backupCmd(ctx, args[1:], io)
	case "migrate":
		return migrateCmd(ctx, args[1:], io)
	case "bench":
		return benchCmd(ctx, args[1:], io)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "gatehouse", version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
}

// loadConfig parses the configuration flags (plus any the command
// registered on fs) and validates the result.
func loadConfig(fs *flag.FlagSet, args []string, io streams, getenv func(string) string) (*config.Config, error) {
	fs.SetOutput(io.stderr)
	cfg := config.Default()
	if err := config.Load(fs, &cfg, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errUsage
		}
		if strings.HasPrefix(err.Error(), "flag provided but not defined") || strings.Contains(err.Error(), "invalid value") {
			return nil, errUsage // the flag package printed it with the usage
		}
		return nil, err
	}
	if cfg.Dev && !flagSet(fs, "log-format") && getenv(config.EnvName("log-format")) == "" {
		cfg.LogFormat = "text"
	}
	if cfg.Dev && !flagSet(fs, "key-publish-delay") && getenv(config.EnvName("key-publish-delay")) == "" {
		cfg.KeyPublishDelay = 0 // a developer's own gateway has no JWKS cache to warm
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	return &cfg, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func serve(ctx context.Context, args []string, io streams) error {
	fs := flag.NewFlagSet("gatehouse serve", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args, io, getenv)
	if err != nil {
		return err
	}
	if err := cfg.ValidateServe(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := app.NewLogger(cfg, io.stderr)
	srv, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v + " " + bi.GoVersion
}
