package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/console"
	"github.com/iceshub/iceshub/internal/store"
)

const operatorsUsage = `operators add --name NAME --role viewer|operator|dpo (password on standard input) | list [--json] | disable --name NAME [--data DIR | --config FILE]`

// cmdOperators adds, lists and disables the console's operator accounts.
// add reads the password from the first line of standard input, so that
// it is never in the process list or the shell's history. Each works
// whether the hub runs or not: the hub reads an account at each sign-in.
func cmdOperators(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, operatorsUsage)
	}
	cmd := args[0]
	fs := flag.NewFlagSet("operators "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	name := fs.String("name", "", "the operator's name (add, disable)")
	role := fs.String("role", "", "add: viewer (sees), operator (also acts) or dpo (also answers subject access requests)")
	asJSON := fs.Bool("json", false, "list: print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	switch cmd {
	case "add":
		if strings.TrimSpace(*name) == "" || !store.ValidRole(*role) {
			return fmt.Errorf("%w: operators add --name NAME --role viewer|operator|dpo, the password on standard input", errUsage)
		}
	case "disable":
		if strings.TrimSpace(*name) == "" {
			return fmt.Errorf("%w: operators disable --name NAME", errUsage)
		}
	case "list":
	default:
		return fmt.Errorf("%w: unknown operators command %q: want add, list or disable", errUsage, cmd)
	}
	var hash string
	if cmd == "add" {
		var err error
		if hash, err = console.ReadPasswordHash(stdin); errors.Is(err, console.ErrBadPassword) {
			return fmt.Errorf("%w: the password on standard input: %v", errUsage, err)
		} else if err != nil {
			return err
		}
	}
	st, err := sf.open()
	if err != nil {
		return err
	}
	defer st.Close()
	switch cmd {
	case "add":
		if err := st.AddOperator(ctx, store.Operator{Name: strings.TrimSpace(*name), Role: *role, PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "operator %s added (%s)\n", strings.TrimSpace(*name), *role)
		return nil
	case "disable":
		if err := st.DisableOperator(ctx, strings.TrimSpace(*name)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "operator %s disabled\n", strings.TrimSpace(*name))
		return nil
	}
	ops, err := st.ListOperators(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if ops == nil {
			ops = []store.Operator{}
		}
		return writeJSON(stdout, ops)
	}
	return console.WriteOperators(stdout, ops)
}
