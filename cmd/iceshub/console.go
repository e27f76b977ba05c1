package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
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
		line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the password from standard input: %w", err)
		}
		if hash, err = console.HashPassword(strings.TrimRight(line, "\r\n")); err != nil {
			return fmt.Errorf("%w: the password on standard input: %v", errUsage, err)
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
	if len(ops) == 0 {
		fmt.Fprintln(stdout, "no operators")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tCREATED\tFAILED SIGN-INS")
	for _, o := range ops {
		state := "active"
		if o.Disabled {
			state = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", o.Name, o.Role, state, o.CreatedAt.UTC().Format(time.RFC3339), o.FailedSignIns)
	}
	return tw.Flush()
}
