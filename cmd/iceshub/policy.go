package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/policy"
)

// cmdPolicy answers questions about the configured data sharing policy.
// Today it has one subcommand, explain.
func cmdPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "explain" {
		return fmt.Errorf("%w: want 'policy explain [--config FILE] [--format markdown|csv]'", errUsage)
	}
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file to explain (default: the built-in configuration)")
	format := fs.String("format", "markdown", "output format: markdown or csv")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *format != "markdown" && *format != "csv" {
		return fmt.Errorf("%w: --format %q: want markdown or csv", errUsage, *format)
	}
	cfg, err := hub.LoadConfig(*path)
	if err != nil {
		return err
	}
	rows := policy.Flows(cfg)
	if *format == "csv" {
		return policy.WriteCSV(stdout, rows)
	}
	return policy.WriteMarkdown(stdout, cfg.Source, rows)
}
