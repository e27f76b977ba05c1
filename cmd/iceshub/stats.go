package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/stats"
)

// cmdStats prints the statistics of the service, as commissioners may see
// them.
func cmdStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
