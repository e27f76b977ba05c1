package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/iceshub/iceshub/internal/audit"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	"github.com/iceshub/iceshub/internal/store"
)

// cmdAudit answers questions about the disclosure record: is it intact
// (verify), and what was shared about one person (subject).
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: audit verify|subject [flags]", errUsage)
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, args[1:], stdout, stderr)
	case "subject":
		return auditSubject(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("%w: unknown audit command %q: want verify or subject", errUsage, args[0])
	}
}

// storeFlags are the flags that find the store: --data (an embedded
// store's data directory), else the store of --config (the embedded
// store's data directory, or PostgreSQL), else the built-in
// configuration's.
type storeFlags struct{ data, config *string }

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		data:   fs.String("data", "", "data directory of the hub (default: store.data_dir of --config)"),
		config: fs.String("config", "", "configuration file whose store.data_dir to read (default: the built-in configuration)"),
	}
}

func (f storeFlags) store() (config.Store, error) {
	if *f.data != "" && *f.config != "" {
		return config.Store{}, fmt.Errorf("%w: give --data or --config, not both", errUsage)
	}
	if *f.data != "" {
		return hub.SQLiteAt(*f.data), nil
	}
	cfg, err := hub.LoadConfig(*f.config)
	if err != nil {
		return config.Store{}, err
	}
	return cfg.Store, nil
}

// open opens the existing store the flags name, for tools that look up no
// person (no subject key).
func (f storeFlags) open() (store.Engine, error) {
	st, err := f.store()
	if err != nil {
		return nil, err
	}
	return hub.OpenExisting(st, nil)
}

// auditVerify recomputes the disclosure record's hash chain. A broken chain
// is an error naming the first bad entry (exit status 1).
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	st, err := sf.open()
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.VerifyDisclosures(ctx)
	if err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("disclosure record broken at entry %d: %s (%d entries verified before it)", rep.BadID, rep.Problem, rep.Entries)
	}
	fmt.Fprintf(stdout, "ok: %d entries verified", rep.Entries)
	if rep.Checkpoint > 0 {
		fmt.Fprintf(stdout, " after checkpoint %d", rep.Checkpoint)
	}
	if rep.Head != "" {
		fmt.Fprintf(stdout, "; head %s", rep.Head)
	}
	fmt.Fprintln(stdout)
	return nil
}

// auditSubject prints everything the disclosure record holds about one NHS
// number, ready for a subject access reply. The report is stdout; nothing
// personal is logged.
func auditSubject(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit subject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	number := fs.String("nhs-number", "", "the person's NHS number (required)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	received := fs.String("received", "", "date the request was received, YYYY-MM-DD (default: today)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	nhs := nhsnumber.Normalise(*number)
	if nhs == "" {
		return fmt.Errorf("%w: --nhs-number is required", errUsage)
	}
	if err := nhsnumber.Check(nhs); err != nil {
		return fmt.Errorf("%w: --nhs-number: %v", errUsage, err)
	}
	now := time.Now()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if *received != "" {
		d, err := time.Parse(time.DateOnly, *received)
		if err != nil {
			return fmt.Errorf("%w: --received: want YYYY-MM-DD", errUsage)
		}
		day = d
	}
	where, err := sf.store()
	if err != nil {
		return err
	}
	st, key, err := hub.OpenWithSubjectKey(where, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := audit.SubjectReport(ctx, st, nhs, key.Of(nhs), day, now)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return audit.Write(stdout, rep)
}
