package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
)

// cmdServe runs the hub until SIGINT or SIGTERM.
func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the built-in configuration, see README)")
	addr := fs.String("addr", "", "listen address HOST:PORT (overrides server.addr)")
	data := fs.String("data", "", "data directory (overrides store.data_dir)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	debug := fs.Bool("debug", false, "log at debug level")
	insecureDev := fs.Bool("insecure-dev", false, "DEVELOPMENT ONLY: accept partner requests without credentials (logged loudly on every request); same as server.insecure_dev")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger, err := newLogger(stderr, *logFormat, level)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.Server.Addr = *addr
	}
	if *data != "" {
		cfg.Store.DataDir = *data
	}
	if *insecureDev {
		cfg.Server.InsecureDev = true
	}
	h, err := newHub(cfg, logger, hubOptions{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		_ = h.close()
		return fmt.Errorf("listen on %s: %w", cfg.Server.Addr, err)
	}
	return h.run(ctx, ln)
}
