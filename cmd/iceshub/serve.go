package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	runtimedebug "runtime/debug"

	"github.com/iceshub/iceshub/cmd/internal/bench"
	"github.com/iceshub/iceshub/internal/hub"
)

// cmdServe runs the hub until SIGINT or SIGTERM.
func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the built-in configuration, see README)")
	addr := fs.String("addr", "", "listen address HOST:PORT (overrides server.addr)")
	opsAddr := fs.String("ops-addr", "", "listen address HOST:PORT of the operator's endpoints: /healthz, /readyz, /metrics, /admin/ (overrides server.ops_addr; set, addr serves only the partners' endpoints)")
	data := fs.String("data", "", "data directory (overrides store.data_dir)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	debug := fs.Bool("debug", false, "log at debug level")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until the hub stops (for iceshub bench)")
	memProfile := fs.String("memprofile", "", "write an allocation profile to this file when the hub stops")
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
	cfg, err := hub.LoadConfig(*path)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.Server.Addr = *addr
	}
	if *opsAddr != "" {
		cfg.Server.OpsAddr = *opsAddr
	}
	if cfg.Server.OpsAddr != "" && cfg.Server.OpsAddr == cfg.Server.Addr {
		return fmt.Errorf("%w: the operator's address %s is the partners' address too: give it one of its own, or none", errUsage, cfg.Server.OpsAddr)
	}
	if *data != "" {
		cfg.Store.DataDir = *data
	}
	if *insecureDev {
		cfg.Server.InsecureDev = true
	}
	if os.Getenv("GOGC") == "" {
		// The hub's live heap is small (tens of MB) and short-lived garbage
		// per referral is most of what it allocates: collecting at twice the
		// live heap rather than once took GC from 5% of the hub's CPU to
		// about half that, for a few MB of memory. GOGC, when set, wins.
		runtimedebug.SetGCPercent(200)
	}
	if *cpuProfile != "" {
		stop, err := bench.StartCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if *memProfile != "" {
		defer bench.WriteAllocProfile(*memProfile, logger)
	}
	h, err := hub.New(cfg, logger, hub.Options{})
	if err != nil {
		return err
	}
	ln, err := h.Listen()
	if err != nil {
		_ = h.Close()
		return err
	}
	return h.Run(ctx, ln)
}
