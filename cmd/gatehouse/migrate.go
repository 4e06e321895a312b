package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"golang.org/x/term"

	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/migrate"
	"github.com/gatehouse-auth/gatehouse/store/postgres"
	redisstore "github.com/gatehouse-auth/gatehouse/store/redis"
	"github.com/gatehouse-auth/gatehouse/store/sqlite"
)

// migrateCmd is "gatehouse migrate --from FILE --to-postgres URL --to-redis
// URL": a one-shot copy of a single-node deployment's SQLite file to
// PostgreSQL and Redis (internal/migrate). Progress goes to stderr, the
// verification table to stdout; any conflict or mismatch is an error.
func migrateCmd(ctx context.Context, args []string, io streams) error {
	fs := flag.NewFlagSet("gatehouse migrate", flag.ContinueOnError)
	fs.SetOutput(io.stderr)
	from := fs.String("from", "", "the SQLite database to copy, e.g. /var/lib/gatehouse/gatehouse.db (opened read-only)")
	toPostgres := fs.String("to-postgres", "", "PostgreSQL URL of the destination (default $"+config.EnvName("postgres")+"; prefer the environment: the URL may hold a password)")
	toRedis := fs.String("to-redis", "", "Redis URL of the destination (default $"+config.EnvName("redis")+")")
	schema := fs.String("postgres-schema", getenv(config.EnvName("postgres-schema")), "PostgreSQL schema of the tables, as the servers will use it (default: the connection's search_path)")
	prefix := fs.String("redis-prefix", envOr(config.EnvName("redis-prefix"), redisstore.DefaultPrefix), "prefix of the Redis keys, as the servers will use it")
	dryRun := fs.Bool("dry-run", false, "check the destination and count what would be copied; write nothing")
	workers := fs.Int("workers", migrate.DefaultWorkers, "requests in flight at once to the destination")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: gatehouse migrate --from FILE --to-postgres URL --to-redis URL [flags]

Copies a single-node deployment (one SQLite file) to PostgreSQL and Redis:
users, refresh families and their tokens, signing keys and audit events to
PostgreSQL; live sessions and revocation entries to Redis. Stop every server
using the file first. Re-running is safe: records already copied are counted
as present. See docs/migrate.md.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package printed why, with the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(io.stderr, "gatehouse migrate: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *toPostgres == "" {
		*toPostgres = getenv(config.EnvName("postgres"))
	}
	if *toRedis == "" {
		*toRedis = getenv(config.EnvName("redis"))
	}
	var missing string
	switch {
	case *from == "":
		missing = "--from is required: the SQLite database to copy"
	case *toPostgres == "":
		missing = "--to-postgres (or $" + config.EnvName("postgres") + ") is required"
	case *toRedis == "":
		missing = "--to-redis (or $" + config.EnvName("redis") + ") is required"
	case *workers < 1:
		missing = "--workers must be at least 1"
	}
	if missing != "" {
		fmt.Fprintf(io.stderr, "gatehouse migrate: %s (see gatehouse migrate -help)\n", missing)
		return errUsage
	}

	src, err := sqlite.OpenExport(ctx, *from)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer src.Close()
	pg, err := postgres.Open(ctx, *toPostgres, postgres.Options{Schema: *schema})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer pg.Close()
	rd, err := redisstore.Open(ctx, *toRedis, redisstore.Options{Prefix: *prefix})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer rd.Close()

	fmt.Fprintf(io.stderr, "gatehouse migrate: copying %s (read-only) to PostgreSQL and Redis.\n", *from)
	fmt.Fprintln(io.stderr, "Every gatehouse server using this file must be stopped: what it writes from now on is not copied.")
	if *dryRun {
		fmt.Fprintln(io.stderr, "Dry run: nothing is written (but PostgreSQL's tables are created if missing, as a server would).")
	}
	terminal := false
	if f, ok := io.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		terminal = true
	}
	rep, err := migrate.Run(ctx, src, migrate.Destination{Postgres: pg, Redis: rd}, migrate.Options{
		DryRun:   *dryRun,
		Workers:  *workers,
		Progress: migrate.ProgressBar(io.stderr, terminal),
	})
	if rep != nil {
		fmt.Fprintln(io.stdout)
		if werr := rep.WriteTable(io.stdout); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		if errors.Is(err, migrate.ErrConflict) || errors.Is(err, migrate.ErrMismatch) {
			return err // already says "migrate: …"
		}
		return fmt.Errorf("migrate: %w (re-running is safe: what was copied is counted as present)", err)
	}
	switch {
	case *dryRun:
		fmt.Fprintln(io.stderr, "Dry run done: no conflict; run again without --dry-run to copy.")
	default:
		fmt.Fprintln(io.stderr, "Done: every live record of the source is in PostgreSQL and Redis. Start the servers with",
			"--postgres and --redis (and the same key-encryption key); keep the SQLite file for a rollback.")
	}
	return nil
}

// envOr returns the environment variable name, or def when it is unset or
// empty.
func envOr(name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
