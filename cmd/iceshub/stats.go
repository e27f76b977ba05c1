package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/routes"
)

// cmdStats prints the statistics of the service, as commissioners may see
// them.
func cmdStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "publish" {
		return cmdStatsPublish(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file whose stats rules and store.data_dir to use (default: the built-in configuration)")
	data := fs.String("data", "", "data directory (overrides store.data_dir)")
	var o stats.Request
	fs.StringVar(&o.From, "from", "", "first month, YYYY-MM (required)")
	fs.StringVar(&o.To, "to", "", "last month, YYYY-MM (required)")
	fs.StringVar(&o.By, "by", stats.DefaultBy, "group by these, comma-separated: council, month, priority, setting, class")
	fs.StringVar(&o.Format, "format", stats.DefaultFormat, "csv, json, markdown or svg (a picture by month and priority)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	q, format, err := o.Query()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := hub.LoadConfig(*path)
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.Store.DataDir = *data
	}
	st, err := hub.OpenExisting(cfg.Store, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := hub.PublishStats(ctx, st, q, cfg.Stats.Rules())
	if errors.Is(err, stats.ErrRequest) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err != nil {
		return err
	}
	return stats.Write(stdout, t, format)
}

// cmdStatsPublish sends an ended month's statistics to the commissioners
// that have not had them (routes.Publisher.PublishEnded): the copies are
// queued in the store and delivered by the hub, at once when hubs run on
// a shared store, at the next start of an embedded one's. An embedded
// store is locked for the command: refused while a hub runs on it, whose
// admin API does the same.
func cmdStatsPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the hub's configuration: its statistics routes, rules and store (required: the built-in configuration names no commissioner)")
	data := fs.String("data", "", "data directory (overrides store.data_dir)")
	month := fs.String("month", "", "the ended month to publish, YYYY-MM (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *month == "" || *path == "" {
		return fmt.Errorf("%w: stats publish --month YYYY-MM --config FILE [--data DIR]", errUsage)
	}
	if err := routes.CheckEnded(*month, time.Now()); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := hub.LoadConfig(*path)
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.Store.DataDir = *data
	}
	lock, err := hub.LockStoreForCommand(cfg.Store, "stats publish",
		"while the hub runs, use its admin API (POST /admin/stats/publish, see docs/statistics.md), or stop the hub first")
	if err != nil {
		return err
	}
	defer lock.Release()
	st, err := hub.OpenExisting(cfg.Store, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	publisher, err := routes.NewPublisher(cfg, st, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	n, to, err := publisher.PublishEnded(ctx, *month)
	if errors.Is(err, routes.ErrCannotPublish) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err != nil {
		return err
	}
	if n == 0 {
		_, err = fmt.Fprintf(stdout, "statistics of %s: every commissioner (%s) has had them; nothing published\n", *month, strings.Join(to, ", "))
		return err
	}
	_, err = fmt.Fprintf(stdout, "statistics of %s: %d of %d commissioners (%s) queued; the hub delivers them\n", *month, n, len(to), strings.Join(to, ", "))
	return err
}
