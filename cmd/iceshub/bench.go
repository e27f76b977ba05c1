package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/iceshub/iceshub/cmd/internal/bench"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/store"
)

// cmdBench measures the whole hub: the real binary serving on the embedded
// store, partner stand-ins answering at once, and a load generator posting
// realistic referral bundles over loopback HTTP (internal/bench).
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := bench.Options{
		OpenStore: func(dataDir string) (store.Engine, error) {
			return hub.OpenStore(hub.StoreSettings{Store: hub.SQLiteAt(dataDir)})
		},
		StoreFile: hub.StoreFile,
	}
	var jsonOut bool
	var save string
	fs.StringVar(&o.Scenario, "scenario", "steady", "steady: constant load; outage: the provider is down for --outage in the middle of the run, then the backlog drains; backlog: the provider is down for the whole send, so its deliveries pile up, then they drain; with --backend postgres and 2 or more replicas, failover: one replica killed (SIGKILL) at a third and two thirds of the send, started again 2 s later; pgrestart: PostgreSQL restarted (pg_ctlcluster 15 main restart -m fast) half way; pgcrash: the same with -m immediate, the server losing what its log had not flushed, as in a crash; rolling: each replica stopped (SIGTERM) and started again in turn")
	fs.StringVar(&o.Backend, "backend", bench.BackendSQLite, "sqlite: one hub on the embedded store; postgres: --replicas hubs on a PostgreSQL database created for the run (iceshub_bench_<unix>, dropped after it unless --keep)")
	fs.IntVar(&o.Replicas, "replicas", 1, "--backend postgres: how many hubs serve on the one database; senders spread requests over them and retry a 503 or a connection error on the next")
	fs.StringVar(&o.PostgresURL, "postgres-url", "", "--backend postgres: the server the run's database is created on (default: $ICESHUB_POSTGRES_URL, else "+bench.DefaultPostgresURL+")")
	fs.DurationVar(&o.Lease, "lease", 0, "--backend postgres: store.postgres.lease of the hubs (0: the default, 30s)")
	fs.IntVar(&o.CancelEvery, "cancel-every", 0, "follow one accepted referral in this many (at random) by its cancellation, and check no recipient receives a cancellation before its order (0: none)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send")
	fs.Float64Var(&o.Rate, "rate", 0, "offered referrals per second across all senders (0: as fast as the hub answers)")
	fs.IntVar(&o.Senders, "senders", 8, "concurrent senders")
	fs.DurationVar(&o.Outage, "outage", 5*time.Second, "scenario outage: how long the provider is down")
	fs.DurationVar(&o.Drain, "drain", 2*time.Minute, "how long to wait after sending for every delivery")
	fs.StringVar(&o.Fixtures, "fixtures", filepath.Join("testdata", "fhir"), "directory holding referral-1-line.json, referral-3-lines.json and referral-20-lines.json")
	fs.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&save, "save", "", "also write the report to this path with .json and .txt appended, as JSON and as the table")
	fs.StringVar(&o.HubBinary, "hub", "", "the iceshub binary to run (default: this one)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory")
	fs.DurationVar(&o.SampleEvery, "sample", time.Second, "how often to sample the hub's memory")
	fs.StringVar(&o.Profile, "profile", "", "write the hub's CPU and allocation profiles (cpu.pprof, allocs.pprof) into this directory")
	fs.StringVar(&o.Flow, "flow", bench.FlowDefault, "default: every referral goes where the built-in configuration sends it (provider, council, and the requester's NHS endpoint as a Task); f1: to the provider and the council only, the flow the performance targets count")
	fs.IntVar(&o.Preload, "preload", 0, "scenario backlog: park this many provider deliveries in the store before the hub starts, as an outage leaves them (a million pending deliveries without hours of sending)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Preload < 0 || (o.Preload > 0 && o.Scenario != "backlog") {
		return fmt.Errorf("%w: --preload needs --scenario backlog and a count of at least 0", errUsage)
	}
	if o.Senders < 1 || o.Duration <= 0 || o.Rate < 0 {
		return fmt.Errorf("%w: --senders must be at least 1, --duration positive, --rate not negative", errUsage)
	}
	if o.Flow != bench.FlowDefault && o.Flow != bench.FlowF1 {
		return fmt.Errorf("%w: --flow %q: want %s or %s", errUsage, o.Flow, bench.FlowDefault, bench.FlowF1)
	}
	if o.PostgresURL == "" {
		o.PostgresURL = cmp.Or(os.Getenv("ICESHUB_POSTGRES_URL"), bench.DefaultPostgresURL)
	}
	if err := o.Check(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	rep, err := bench.Run(ctx, o, stderr)
	if err != nil {
		return err
	}
	if save != "" {
		var j, t bytes.Buffer
		if err := errors.Join(writeJSON(&j, rep), bench.Print(&t, rep), os.WriteFile(save+".json", j.Bytes(), 0o644), os.WriteFile(save+".txt", t.Bytes(), 0o644)); err != nil {
			return err
		}
	}
	if jsonOut {
		return writeJSON(stdout, rep)
	}
	return bench.Print(stdout, rep)
}
