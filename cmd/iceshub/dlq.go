package main

import (
	"context"
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
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

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
		where, err := sf.store()
		if err != nil {
			return err
		}
		lock, err := hub.LockStoreForCommand(where, "dlq "+args[0],
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
		return writeJSON(stdout, hub.ViewOf(d))
	case "replay", "discard":
		// Replays follow the policy of the configuration named; with only
		// --data the hub's configuration is unknown here.
		var cfg *config.Config
		if *sf.config != "" {
			if cfg, err = hub.LoadConfig(*sf.config); err != nil {
				return err
			}
		} else if args[0] == "replay" {
			fmt.Fprintln(stdout, "note: no --config: replaying the copies as they were cut; give --config to apply the current routes' fields")
		}
		acts := hub.NewDLQActions(st, cfg)
		var failed int
		for _, id := range ids {
			var err error
			if args[0] == "replay" {
				var d model.Delivery
				if d, err = acts.Replay(ctx, id, *by, *reason); err == nil {
					fmt.Fprintf(stdout, "dead letter %d replayed: %s for %s, idempotency key %s, queued on %s\n",
						id, d.Kind, d.Recipient, d.IdempotencyKey, routes.TopicDeliver(d.Recipient))
				}
			} else if err = acts.Discard(ctx, id, *by, *reason); err == nil {
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
	views := hub.DeadLetterViews(dls, all)
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
			v.ReferralID, v.StatusCode, v.State, hub.OneLine(v.Error, 80))
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
