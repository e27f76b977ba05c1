package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

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
// that have not had them (hub.PublishMonth); refused while a hub runs on
// an embedded store, whose admin API does the same.
func cmdStatsPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the hub's configuration: its statistics routes, rules and store (required)")
	data := fs.String("data", "", "data directory (overrides store.data_dir)")
	month := fs.String("month", "", "the ended month to publish, YYYY-MM (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *month == "" || *path == "" {
		return fmt.Errorf("%w: stats publish --month YYYY-MM --config FILE [--data DIR]", errUsage)
	}
	cfg, err := hub.LoadConfig(*path)
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.Store.DataDir = *data
	}
	n, to, err := hub.PublishMonth(ctx, cfg, *month)
	if errors.Is(err, routes.ErrCannotPublish) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err == nil {
		_, err = fmt.Fprintf(stdout, "statistics of %s: queued for %d of %d commissioners (%s), for the hub to deliver; one that had them gets nothing again\n",
			*month, n, len(to), strings.Join(to, ", "))
	}
	return err
}
