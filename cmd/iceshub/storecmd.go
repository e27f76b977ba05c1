package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/storecopy"
)

// cmdMigrate brings the store's schema up to date, or with status lists
// its migrations. The embedded store migrates itself as it opens, so for
// it both list.
func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	status := len(args) > 0 && args[0] == "status"
	if status {
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: migrate [status] [--data DIR | --config FILE]", errUsage)
	}
	where, err := sf.store()
	if err != nil {
		return err
	}
	var st migrations
	if hub.IsShared(where) {
		pg, err := hub.OpenPostgres(where, !status)
		if err != nil {
			return err
		}
		st = pg
	} else {
		// The embedded store brings its schema up to date as it opens.
		s, err := hub.OpenExisting(where, nil)
		if err != nil {
			return err
		}
		st = s.(migrations)
	}
	defer st.Close()
	states, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, states)
	}
	for _, s := range states {
		applied := "pending"
		if s.Applied {
			applied = "applied " + s.AppliedAt
		}
		fmt.Fprintf(stdout, "%05d  %-40s %s\n", s.Version, s.Name, applied)
	}
	return nil
}

// migrations is a store whose schema is kept by versioned migrations:
// both engines.
type migrations interface {
	MigrationStatus(ctx context.Context) ([]store.MigrationState, error)
	Close() error
}

// cmdStore runs `store copy`: everything an embedded store holds, into a
// new PostgreSQL store.
func cmdStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "copy" {
		return fmt.Errorf("%w: store copy --from-data DIR --config FILE", errUsage)
	}
	fs := flag.NewFlagSet("store copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from-data", "", "data directory of the embedded store to copy (no hub may run on it)")
	path := fs.String("config", "", "configuration file whose store is the new PostgreSQL store")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: store copy --from-data DIR --config FILE", errUsage)
	}
	cfg, err := hub.LoadConfig(*path)
	if err != nil {
		return err
	}
	lock, err := hub.LockStoreForCommand(hub.SQLiteAt(*from), "store copy", "stop the hub on it first: a copy is of a store at rest")
	if err != nil {
		return err
	}
	defer lock.Release()
	pg, err := hub.OpenPostgres(cfg.Store, true)
	if err != nil {
		return err
	}
	defer pg.Close()
	rep, err := storecopy.Copy(ctx, hub.StoreFile(*from), pg)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	for _, c := range rep.Counts {
		fmt.Fprintf(stdout, "%-24s %8d copied\n", c.Table, c.Target)
	}
	for t, n := range rep.Pending {
		fmt.Fprintf(stdout, "%-24s %8d pending, to be delivered by the PostgreSQL hubs\n", t, n)
	}
	fmt.Fprintf(stdout, "disclosure record verified: %d entries, head %s\n", rep.Chain.Entries, rep.Chain.Head)
	return nil
}
