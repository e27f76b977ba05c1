package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/store"
)

// cmdKeys manages the data keys that encrypt stored payloads.
func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return fmt.Errorf("%w: keys rotate [flags]", errUsage)
	}
	return keysRotate(ctx, args[1:], stdout, stderr)
}

// keysRotate re-encrypts every sealed value of the store under the active
// data key, optionally after making a new key the active one.
func keysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fset.SetOutput(stderr)
	path := fset.String("config", "", "configuration file whose store.data_dir and store.data_key_file to use (default: the built-in configuration)")
	data := fset.String("data", "", "data directory (overrides store.data_dir)")
	newKey := fset.Bool("new-key", false, "first generate a new key and make it the active one (first line of the key file); the old keys stay so that what they sealed can be opened")
	batch := fset.Int("batch", store.DefaultRotateBatch, "rows re-encrypted per transaction")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fset.Arg(0))
	}
	cfg, err := hub.LoadConfig(*path)
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.Store.DataDir = *data
	}
	// Refused while a hub runs on the store, before any key is added: the
	// running hub holds its keys from its start, and would not be able to
	// open what the rotation re-encrypts under a key it does not have.
	lock, err := hub.LockStoreForCommand(cfg.Store, "keys rotate",
		"the running hub would not know a new key and could not read what is re-encrypted under it: stop the hub, rotate, then start it again")
	if err != nil {
		return err
	}
	defer lock.Release()
	keyFile := hub.DataKeyFile(cfg)
	if *newKey && hub.IsShared(cfg.Store) {
		return fmt.Errorf("hubs on PostgreSQL share their data keys, so keys rotate makes none: put a new key first in %s on every hub (the old ones after it), restart them one at a time, then run keys rotate without --new-key", crypt.EnvKey)
	}
	if *newKey {
		if os.Getenv(crypt.EnvKey) != "" {
			return fmt.Errorf("the data keys come from %s: put a new key first in it (keeping the old ones after it) and run keys rotate without --new-key", crypt.EnvKey)
		}
		k, err := crypt.NewKey()
		if err != nil {
			return err
		}
		if err := crypt.AddKeyToFile(keyFile, k); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new active data key %s added to %s\n", k.ID, keyFile)
	}
	keys, err := hub.LoadDataKeys(cfg, false, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	st, err := hub.OpenStore(hub.StoreSettings{Store: cfg.Store, Keyring: keys})
	if err != nil {
		return err
	}
	defer st.Close()
	counts, err := st.RotateKeys(ctx, *batch)
	var rewritten, current int
	for _, c := range counts {
		fmt.Fprintf(stdout, "%-40s rewritten %6d  already current %6d\n", c.Table+"."+c.Column, c.Rewritten, c.Current)
		rewritten += c.Rewritten
		current += c.Current
	}
	if err != nil {
		return fmt.Errorf("rotation stopped (what is printed above is done; run it again to go on): %w", err)
	}
	fmt.Fprintf(stdout, "every sealed value is under the active key %s: %d rewritten, %d already current (keys held: %s)\n",
		keys.ActiveID(), rewritten, current, strings.Join(keys.IDs(), ", "))
	return nil
}
