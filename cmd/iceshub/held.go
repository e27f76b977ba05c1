package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

const heldUsage = `held list [--json] [--all] | route ID --council C --reason TEXT | release ID --permission-recorded-by NAME --evidence REF | close ID --reason TEXT [--by NAME] [--data DIR | --config FILE]`

// cmdHeld lists the messages held for review, and resolves them: route
// one to a chosen council, release one once the person's permission is
// recorded, close one with a reason. list works whether the hub runs or
// not; the resolutions write the store and are refused while a hub runs on
// it (its admin API makes the same decisions).
func cmdHeld(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, heldUsage)
	}
	cmd := args[0]
	fs := flag.NewFlagSet("held "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "list resolved held messages too, with their resolution")
	council := fs.String("council", "", "route: the council (partner id) to send the copy to")
	reason := fs.String("reason", "", "why (required for route and close)")
	by := fs.String("by", defaultOperator(), "who decides, recorded with the resolution")
	permBy := fs.String("permission-recorded-by", "", "release: who recorded the person's express permission")
	permAt := fs.String("permission-recorded-at", "", "release: when it was recorded (RFC 3339 or YYYY-MM-DD; default now)")
	evidence := fs.String("evidence", "", "release: a reference to the evidence of the permission (a document or case number, never personal values)")
	rest, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if cmd == "list" {
		if len(rest) > 0 {
			return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
		}
		st, err := sf.open()
		if err != nil {
			return err
		}
		defer st.Close()
		return heldList(ctx, st, stdout, *asJSON, *all)
	}
	if cmd != "route" && cmd != "release" && cmd != "close" {
		return fmt.Errorf("%w: unknown held command %q: want list, route, release or close", errUsage, cmd)
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: held %s needs one held message ID (see held list)", errUsage, cmd)
	}
	ids, err := parseIDs("show", rest)
	if err != nil {
		return fmt.Errorf("%w: %q is not a held message ID (a positive number, see held list)", errUsage, rest[0])
	}
	id := ids[0]
	at, err := hub.ParsePermissionTime(*permAt)
	switch {
	case err != nil:
		return fmt.Errorf("%w: --permission-recorded-at: %v", errUsage, err)
	case cmd == "route" && strings.TrimSpace(*council) == "":
		return fmt.Errorf("%w: held route ID --council C --reason TEXT: name the council", errUsage)
	case cmd != "release" && strings.TrimSpace(*reason) == "":
		return fmt.Errorf("%w: held %s ID --reason TEXT: a %s needs a reason", errUsage, cmd, cmd)
	case cmd == "release" && (strings.TrimSpace(*permBy) == "" || strings.TrimSpace(*evidence) == ""):
		return fmt.Errorf("%w: held release ID --permission-recorded-by NAME --evidence REF: record who recorded the person's permission and where the evidence is", errUsage)
	}

	return resolveHeld(ctx, sf, heldCommand{cmd: cmd, id: id, council: *council, reason: *reason, by: *by,
		permission: store.PermissionRecord{RecordedBy: *permBy, RecordedAt: at, Evidence: *evidence}}, *asJSON, stdout, stderr)
}

// heldCommand is what an operator decided about one held message, on the
// command line.
type heldCommand struct {
	cmd                 string // route, release or close
	id                  int64
	council, reason, by string
	permission          store.PermissionRecord // release only
}

// resolveHeld carries out d on the store of sf, which no hub may hold, with
// the routes of its configuration, and prints what it did.
func resolveHeld(ctx context.Context, sf storeFlags, d heldCommand, asJSON bool, stdout, stderr io.Writer) error {
	cmd, id := d.cmd, d.id
	where, err := sf.store()
	if err != nil {
		return err
	}
	lock, err := hub.LockStoreForCommand(where, "held "+cmd,
		"while the hub runs, use its admin API (POST /admin/held/{id}/"+cmd+", see docs/held.md), or stop the hub first")
	if err != nil {
		return err
	}
	defer lock.Release()
	// The copy is cut by the routes of the configuration named; with only
	// --data, by the built-in configuration's.
	cfg, err := hub.LoadConfig(*sf.config)
	if err != nil {
		return err
	}
	if *sf.config == "" && cmd != "close" {
		fmt.Fprintln(stdout, "note: no --config: the copy is cut by the built-in configuration's routes; give --config to use the hub's")
	}
	st, key, err := hub.OpenWithSubjectKey(where, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	held, err := hub.NewHeldResolver(st, cfg, key, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	var res routes.Resolved
	switch cmd {
	case "route":
		res, err = held.Route(ctx, id, d.council, d.by, d.reason)
	case "release":
		res, err = held.Release(ctx, id, d.permission, d.by, d.reason)
	case "close":
		res, err = held.Close(ctx, id, d.by, d.reason)
	}
	if err != nil {
		return fmt.Errorf("held message %d not resolved: %w", id, err)
	}
	if asJSON {
		return writeJSON(stdout, res)
	}
	printResolved(stdout, res)
	return nil
}

// printResolved says what a resolution did.
func printResolved(w io.Writer, res routes.Resolved) {
	switch {
	case res.Action == store.ActionClosed:
		fmt.Fprintf(w, "held message %d closed; nothing sent\n", res.ID)
	case res.HeldAgain != "":
		fmt.Fprintf(w, "held message %d %s to %s, and held again there: %s (release it once permission is recorded; see held list)\n",
			res.ID, res.Action, res.Recipient, res.HeldAgain)
	default:
		fmt.Fprintf(w, "held message %d %s: %s for %s queued on %s, idempotency key %s\n",
			res.ID, res.Action, res.Kind, res.Recipient, routes.TopicDeliver(res.Recipient), strings.Join(res.IdempotencyKeys, ", "))
	}
	if res.Action == store.ActionReleased {
		fmt.Fprintln(w, "the permission is recorded with the referral: its later messages go without a hold")
	}
}

func heldList(ctx context.Context, st store.HeldMessages, stdout io.Writer, asJSON, all bool) error {
	list := st.Held
	if all {
		list = st.AllHeld
	}
	held, err := list(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if held == nil {
			held = []store.Hold{}
		}
		return writeJSON(stdout, held)
	}
	if len(held) == 0 {
		fmt.Fprintln(stdout, "nothing held")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	header := "ID\tAT\tREFERRAL\tKIND\tROUTE\tREASON"
	if all {
		header += "\tSTATE"
	}
	fmt.Fprintln(tw, header)
	for _, h := range held {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s", h.ID, h.At.UTC().Format(time.RFC3339), h.ReferralID, h.Kind, h.Route, h.Reason)
		if all {
			state := "open"
			if r := h.Resolution; r != nil {
				state = r.Action + " by " + r.By
				if r.Recipient != "" {
					state += " to " + r.Recipient
				}
			}
			fmt.Fprintf(tw, "\t%s", state)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
