package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/iceshub/iceshub/internal/console"
)

// cmdOperators adds, lists and disables the console's operator accounts
// and replaces their passwords (console.OperatorsCommand); add and
// password read the password from standard input.
// Each works whether the hub runs or not: the hub reads an account at
// each sign-in.
func cmdOperators(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: operators add --name NAME --role viewer|operator|dpo | list [--json] | password --name NAME | disable --name NAME", errUsage)
	}
	c := console.OperatorsCommand{Cmd: args[0], By: defaultOperator()}
	fs := flag.NewFlagSet("operators "+c.Cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	fs.StringVar(&c.Name, "name", "", "the operator's name (add, password, disable)")
	fs.StringVar(&c.Role, "role", "", "add: viewer (sees), operator (also acts) or dpo (also answers subject access requests)")
	fs.BoolVar(&c.JSON, "json", false, "list: print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if err := c.Check(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	st, err := sf.open()
	if err != nil {
		return err
	}
	defer st.Close()
	err = c.Run(ctx, st, stdin, stdout)
	if errors.Is(err, console.ErrBadPassword) {
		return fmt.Errorf("%w: the password on standard input: %v", errUsage, err)
	}
	return err
}
