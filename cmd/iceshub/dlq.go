package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// adminStore is what the dead-letter actions and the admin API read and
// write: dead letters, held messages, statistics, and the referral a
// replay is re-cut from (routes.NewRecut).
type adminStore interface {
	store.DeadLetters
	store.HeldMessages
	store.Statistics
	FindReferral(ctx context.Context, l intake.Lookup) (intake.Record, bool, error)
}

// dlqActions is the use case "replay or discard a dead letter", shared by
// the dlq command and the admin API.
type dlqActions struct {
	store adminStore
	// recut re-cuts a delivery to the current route's fields before a
	// replay; nil publishes the stored copy (whose mapping still runs at
	// send time, so it is current).
	recut func(model.Delivery) (model.Delivery, error)
}

// newDLQActions returns the dead-letter actions on st. With cfg, a replay
// is re-cut under cfg's routes (the current policy); without, the stored
// copy is replayed as cut (its mapping still runs at send time).
func newDLQActions(st adminStore, cfg *config.Config) *dlqActions {
	a := &dlqActions{store: st}
	if cfg != nil {
		kinds := map[string]string{}
		for _, p := range cfg.Partners {
			kinds[p.ID] = p.Kind
		}
		a.recut = routes.NewRecut(routes.RecutConfig{Routes: cfg.Routes, PartnerKinds: kinds}, st)
	}
	return a
}

// replay publishes dead letter id again on its partner's topic.
func (a *dlqActions) replay(ctx context.Context, id int64, by, reason string) (model.Delivery, error) {
	return a.store.ReplayDeadLetter(ctx, id, store.Replay{By: by, Reason: reason, Topic: routes.TopicDeliver, Recut: a.recut})
}

// discard records that by discarded dead letter id, and why.
func (a *dlqActions) discard(ctx context.Context, id int64, by, reason string) error {
	return a.store.DiscardDeadLetter(ctx, id, by, reason)
}

// deadLetterView is a dead letter as shown to an operator: the record and
// the delivery it carried (the partner's copy, already cut to the route's
// fields), or the raw payload when it is not a delivery.
type deadLetterView struct {
	store.DeadLetter
	Delivery json.RawMessage `json:"delivery,omitempty"`
	State    string          `json:"state"`
}

func viewOf(d store.DeadLetter) deadLetterView {
	v := deadLetterView{DeadLetter: d, State: stateOf(d)}
	if len(d.Payload) > 0 {
		if json.Valid(d.Payload) {
			v.Delivery = json.RawMessage(d.Payload)
		} else {
			v.Delivery, _ = json.Marshal(string(d.Payload))
		}
	}
	return v
}

func stateOf(d store.DeadLetter) string {
	if d.Resolution == nil {
		return "open"
	}
	return d.Resolution.Action
}

// cmdDLQ lists, shows, replays and discards dead letters in a hub's store.
// list and show work whether the hub runs or not; replay and discard write
// the store and are refused while a hub runs on it (its admin API makes the
// same decisions): a replayed delivery is published on the partner's
// topic, which the next start delivers.
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: dlq list|show|replay|discard [flags]", errUsage)
	}
	fs := flag.NewFlagSet("dlq "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "list replayed and discarded dead letters too")
	reason := fs.String("reason", "", "why (required for discard)")
	by := fs.String("by", defaultOperator(), "who decides, recorded with the replay or discard")
	rest, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	ids, err := parseIDs(args[0], rest)
	if err != nil {
		return err
	}
	if args[0] == "discard" && strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("%w: dlq discard ID... --reason TEXT: a discard needs a reason", errUsage)
	}
	if args[0] == "replay" || args[0] == "discard" {
		// A decision writes the store: refused while a hub runs on it,
		// whose admin API makes the same decisions.
		dir, err := sf.dataDir()
		if err != nil {
			return err
		}
		lock, err := lockStoreForCommand(dir, "dlq "+args[0],
			"while the hub runs, use its admin API (POST /admin/dlq/{id}/"+args[0]+", see README, Admin API), or stop the hub first")
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	st, err := sf.open()
	if err != nil {
		return err
	}
	defer st.Close()

	switch args[0] {
	case "list":
		return dlqList(ctx, st, stdout, *asJSON, *all)
	case "show":
		if len(ids) != 1 {
			return fmt.Errorf("%w: dlq show ID", errUsage)
		}
		d, err := st.DeadLetter(ctx, ids[0])
		if err != nil {
			return err
		}
		return writeJSON(stdout, viewOf(d))
	case "replay", "discard":
		// Replays follow the policy of the configuration named; with only
		// --data the hub's configuration is unknown here.
		var cfg *config.Config
		if *sf.config != "" {
			if cfg, err = loadConfig(*sf.config); err != nil {
				return err
			}
		} else if args[0] == "replay" {
			fmt.Fprintln(stdout, "note: no --config: replaying the copies as they were cut; give --config to apply the current routes' fields")
		}
		acts := newDLQActions(st, cfg)
		var failed int
		for _, id := range ids {
			var err error
			if args[0] == "replay" {
				var d model.Delivery
				if d, err = acts.replay(ctx, id, *by, *reason); err == nil {
					fmt.Fprintf(stdout, "dead letter %d replayed: %s for %s, idempotency key %s, queued on %s\n",
						id, d.Kind, d.Recipient, d.IdempotencyKey, routes.TopicDeliver(d.Recipient))
				}
			} else if err = acts.discard(ctx, id, *by, *reason); err == nil {
				fmt.Fprintf(stdout, "dead letter %d discarded\n", id)
			}
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "dead letter %d: %v\n", id, err)
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d dead letters not %sed", failed, len(ids), strings.TrimSuffix(args[0], "e"))
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown dlq command %q: want list, show, replay or discard", errUsage, args[0])
	}
}

// parseIDs checks the positional arguments of a dlq command.
func parseIDs(cmd string, args []string) ([]int64, error) {
	switch cmd {
	case "list":
		if len(args) > 0 {
			return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
		}
		return nil, nil
	case "show", "replay", "discard":
		if len(args) == 0 {
			return nil, fmt.Errorf("%w: dlq %s needs at least one dead letter ID (see dlq list)", errUsage, cmd)
		}
	}
	ids := make([]int64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%w: %q is not a dead letter ID (a positive number, see dlq list)", errUsage, a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func dlqList(ctx context.Context, st store.DeadLetters, stdout io.Writer, asJSON, all bool) error {
	dls, err := st.DeadLetters(ctx)
	if err != nil {
		return err
	}
	views := []deadLetterView{}
	for _, d := range dls {
		if all || d.Resolution == nil {
			views = append(views, deadLetterView{DeadLetter: d, State: stateOf(d)})
		}
	}
	if asJSON {
		return writeJSON(stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tPARTNER\tKIND\tREFERRAL\tSTATUS\tSTATE\tERROR")
	for _, v := range views {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", v.ID, v.At.UTC().Format(time.RFC3339), v.Recipient, v.Kind,
			v.ReferralID, v.StatusCode, v.State, oneLine(v.Error, 80))
	}
	return tw.Flush()
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments ("discard 3 4 --reason x") and returns the
// positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

// defaultOperator names the person running a command: the login name.
func defaultOperator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return "cli:" + n
	}
	return "cli"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// dlqStatus returns the admin API's status and error code for an error of
// the dead-letter actions.
func dlqStatus(err error) (int, string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 404, "not-found"
	case errors.Is(err, store.ErrResolved), errors.Is(err, store.ErrHoldResolved):
		return 409, "already-resolved"
	case errors.Is(err, routes.ErrCannotResolve):
		return 422, "cannot-resolve"
	case errors.Is(err, store.ErrNotReplayable):
		return 422, "not-replayable"
	case errors.Is(err, store.ErrReasonRequired), errors.Is(err, store.ErrByRequired), errors.Is(err, store.ErrPermissionRequired):
		return 400, "invalid-request"
	}
	return 500, "internal-error"
}
