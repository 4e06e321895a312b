package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
)

// keysCmd is "gatehouse keys rotate|remove|list". A running server picks
// up what these commands change within ten seconds (it reloads the ring),
// well inside the publish delay; the admin API acts at once.
func keysCmd(ctx context.Context, args []string, io streams) (err error) {
	if len(args) == 0 {
		fmt.Fprint(io.stderr, usage)
		return errUsage
	}
	fs := flag.NewFlagSet("gatehouse keys "+args[0], flag.ContinueOnError)
	var kid string
	switch args[0] {
	case "rotate", "list":
	case "remove":
		fs.StringVar(&kid, "kid", "", "the key to remove at once (compromised)")
	default:
		fmt.Fprintf(io.stderr, "gatehouse keys: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
	cfg, err := loadConfig(fs, args[1:], io, getenv)
	if err != nil {
		return err
	}
	c := clock.System{}
	st, err := app.OpenAdminStores(ctx, cfg, c)
	if err != nil {
		return err
	}
	defer st.Close()
	if args[0] == "list" {
		// Read only: opening the ring could generate or rotate keys.
		return listKeys(ctx, st.Keys, io)
	}
	ring, err := app.AdminRing(ctx, cfg, st, c)
	if err != nil {
		return err
	}
	rec, auditErr := cliRecorder(st.Audit, c)
	defer auditErr(&err)
	switch args[0] {
	case "rotate":
		kid, signsFrom, err := ring.Rotate(ctx)
		if err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		rec.Record(ctx, audit.Event{Type: audit.TypeKeyRotated, ActorID: "cli", Reason: kid})
		fmt.Fprintf(io.stdout, "new key %s published now, signs from %s\n", kid, signsFrom.UTC().Format(time.RFC3339))
	case "remove":
		if kid == "" {
			return errors.New("keys remove: --kid is required")
		}
		if err := ring.Remove(ctx, kid); err != nil {
			return fmt.Errorf("keys remove: %w", err)
		}
		rec.Record(ctx, audit.Event{Type: audit.TypeKeyRemoved, ActorID: "cli", Reason: kid})
		fmt.Fprintf(io.stdout, "key %s removed from the JWKS and refused for verification\n", kid)
	}
	return nil
}

func listKeys(ctx context.Context, ks keys.Store, io streams) error {
	recs, err := ks.SigningKeys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(io.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tCREATED\tSIGNS FROM\tRETIRED\tLEAVES JWKS\tREMOVED")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", r.KID, r.Alg, stamp(r.CreatedAt), stamp(r.SignsFrom), stamp(r.RetiredAt), stamp(r.RemoveAt), r.Removed)
	}
	return tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
