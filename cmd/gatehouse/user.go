package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
)

var getenv = os.Getenv

func userCmd(ctx context.Context, args []string, io streams) (err error) {
	if len(args) == 0 {
		fmt.Fprint(io.stderr, usage)
		return errUsage
	}
	fs := flag.NewFlagSet("gatehouse user "+args[0], flag.ContinueOnError)
	var username, roles string
	switch args[0] {
	case "create":
		fs.StringVar(&username, "username", "", "the new user's name")
		fs.StringVar(&roles, "role", "", "comma-separated roles to give the user (e.g. admin)")
	case "roles":
		fs.StringVar(&username, "username", "", "the user")
		fs.StringVar(&roles, "set", "", "the user's roles, comma-separated (empty removes all)")
	case "list":
	default:
		fmt.Fprintf(io.stderr, "gatehouse user: unknown command %q\n\n%s", args[0], usage)
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
	accounts, err := app.Accounts(cfg, st.Accounts, c, app.NewLogger(cfg, io.stderr), nil)
	if err != nil {
		return err
	}
	rec, auditErr := cliRecorder(st.Audit, c)
	defer auditErr(&err)
	switch args[0] {
	case "create":
		if username == "" {
			return errors.New("user create: --username is required")
		}
		if _, err := account.CheckRoles(splitRoles(roles)); err != nil {
			return fmt.Errorf("user create: %w", err)
		}
		password, err := readPassword(io)
		if err != nil {
			return err
		}
		u, err := accounts.Register(ctx, username, password)
		if err != nil {
			return fmt.Errorf("user create: %w", err)
		}
		rec.Record(ctx, audit.Event{Type: audit.TypeUserCreated, UserID: u.ID, Username: u.Username, ActorID: "cli"})
		if roles != "" {
			if err := accounts.SetRoles(ctx, u.ID, splitRoles(roles)); err != nil {
				return fmt.Errorf("user create: set roles: %w", err)
			}
			rec.Record(ctx, audit.Event{Type: audit.TypeRolesChanged, UserID: u.ID, Username: u.Username, ActorID: "cli", Reason: strings.Join(splitRoles(roles), ",")})
		}
		fmt.Fprintf(io.stdout, "created user %s (id %s)\n", u.Username, u.ID)
	case "roles":
		if username == "" || !flagSet(fs, "set") {
			return errors.New("user roles: --username and --set are required")
		}
		u, err := accounts.UserByUsername(ctx, username)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, account.ErrInvalidUsername) {
			return fmt.Errorf("user roles: no user %q", username)
		}
		if err != nil {
			return err
		}
		if err := accounts.SetRoles(ctx, u.ID, splitRoles(roles)); err != nil {
			return fmt.Errorf("user roles: %w", err)
		}
		rec.Record(ctx, audit.Event{Type: audit.TypeRolesChanged, UserID: u.ID, Username: u.Username, ActorID: "cli", Reason: strings.Join(splitRoles(roles), ",")})
		fmt.Fprintf(io.stdout, "roles of %s: %s\n", u.Username, strings.Join(splitRoles(roles), ","))
	case "list":
		tw := tabwriter.NewWriter(io.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSERNAME\tROLES\tCREATED")
		after := ""
		for {
			page, err := accounts.List(ctx, after, 500)
			if err != nil {
				return err
			}
			for _, u := range page {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.ID, u.Username, strings.Join(u.Roles, ","), u.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"))
			}
			if len(page) < 500 {
				break
			}
			after = page[len(page)-1].Username
		}
		return tw.Flush()
	}
	return nil
}

func splitRoles(s string) []string {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// readPassword reads the password from the terminal without echo, or the
// first line of stdin when it is not a terminal (for scripts:
// `printf '%s\n' "$PW" | gatehouse user create ...`).
func readPassword(io streams) (string, error) {
	if f, ok := io.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(io.stderr, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(io.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(io.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("read password: stdin is empty (pipe the password in, one line)")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// cliRecorder is the audit recorder of the admin commands: the events go to
// the store (the terminal gets the command's own output). The returned
// function, deferred with the command's error, turns a failed audit write
// into a failed command, so that no change goes unaudited silently.
func cliRecorder(db audit.Store, c clock.Clock) (*audit.Recorder, func(*error)) {
	rec := audit.NewRecorder(slog.New(slog.DiscardHandler), db, c)
	failed := false
	rec.OnStoreError(func() { failed = true })
	return rec, func(err *error) {
		if failed && *err == nil {
			*err = errors.New("the change was made, but its audit event could not be stored")
		}
	}
}
