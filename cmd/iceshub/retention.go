package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/iceshub/iceshub/internal/hub"
)

// cmdRetention applies the retention settings to a store once and prints
// what it removed.
func cmdRetention(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		return fmt.Errorf("%w: retention run [flags]", errUsage)
	}
	fs := flag.NewFlagSet("retention run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file whose retention settings and store.data_dir to use (default: the built-in configuration)")
	data := fs.String("data", "", "data directory (overrides store.data_dir)")
	nowFlag := fs.String("now", "", "count ages from this time, RFC 3339 (default: now; for tests and dry reckoning)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	now := time.Now()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return fmt.Errorf("%w: --now: want RFC 3339, like 2026-03-02T00:00:00Z", errUsage)
		}
		now = t
	}
	cfg, err := hub.LoadConfig(*path)
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.Store.DataDir = *data
	}
	lock, err := hub.LockStoreForCommand(cfg.Store, "retention run",
		"the running hub applies retention itself every retention.interval; to run it by hand, stop the hub first")
	if err != nil {
		return err
	}
	defer lock.Release()
	st, err := hub.OpenExisting(cfg.Store, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	p := hub.RetentionPolicy(cfg.Retention, now)
	rep, err := st.ApplyRetention(ctx, p)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "retention at %s: payloads received before %s (%d days), disclosure entries of people inactive since %s (%d years)\n",
		now.UTC().Format(time.RFC3339), p.MessagesBefore.UTC().Format(time.RFC3339), cfg.Retention.PayloadDays,
		p.SubjectsInactiveSince.UTC().Format(time.RFC3339), cfg.Retention.DisclosureYears)
	for _, t := range rep.SortedTopics() {
		fmt.Fprintf(stdout, "removed %d delivered messages from %s\n", rep.Messages[t], t)
	}
	fmt.Fprintf(stdout, "removed %d messages in all, %d idempotency records, %d disclosure record entries\n",
		rep.MessageCount(), rep.IdempotencyKeys, rep.Disclosures)
	fmt.Fprintf(stdout, "removed %d records of closed orders, %d delivery receipts\n", rep.Referrals, rep.Receipts)
	fmt.Fprintln(stdout, "kept: messages not yet delivered, records of open orders, held messages and dead letters")
	return nil
}
