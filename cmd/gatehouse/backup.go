package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
)

// backupCmd is "gatehouse backup --to FILE": a consistent online copy of
// the SQLite database (VACUUM INTO), safe while the server runs. The copy
// is created with mode 0600 and must not exist yet.
func backupCmd(ctx context.Context, args []string, io streams) error {
	fs := flag.NewFlagSet("gatehouse backup", flag.ContinueOnError)
	var to string
	fs.StringVar(&to, "to", "", "the backup file to create (must not exist)")
	cfg, err := loadConfig(fs, args, io, getenv)
	if err != nil {
		return err
	}
	if to == "" {
		return errors.New("backup: --to is required")
	}
	if cfg.Distributed() {
		return errors.New("backup: this command copies the SQLite file; with --postgres and --redis, back up PostgreSQL (pg_dump) and keep the KEK (docs/deployment.md)")
	}
	db, err := app.OpenStore(ctx, cfg, clock.System{})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Backup(ctx, to); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(io.stdout, "backed up %s to %s\n", cfg.DatabasePath(), to)
	if !cfg.Dev || cfg.KEKFile != "" || cfg.KEK != "" {
		fmt.Fprintln(io.stdout, "note: the signing keys in the backup are sealed under the KEK; keep the KEK with it (separately)")
	} else {
		fmt.Fprintln(io.stdout, "note: the signing keys in the backup are sealed under", cfg.DataDir+"/kek", "- keep that file with it")
	}
	return nil
}
