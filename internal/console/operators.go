package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iceshub/iceshub/internal/store"
)

// ErrBadPassword marks a password HashPassword refuses, or none given.
var ErrBadPassword = errors.New("console: unusable password")

// OperatorsCommand is what `iceshub operators` was asked: add, list,
// password or disable, with its flags.
type OperatorsCommand struct {
	Cmd, Name, Role string
	JSON            bool
	// By is who ran the command ("cli:<user>"), as the operator record
	// names it.
	By string
}

// Check says what the command lacks to run, before any store is opened.
func (c OperatorsCommand) Check() error {
	switch c.Cmd {
	case "add":
		if strings.TrimSpace(c.Name) == "" || !store.ValidRole(c.Role) {
			return errors.New("operators add --name NAME --role viewer|operator|dpo, the password on standard input")
		}
	case "disable":
		if strings.TrimSpace(c.Name) == "" {
			return errors.New("operators disable --name NAME")
		}
	case "password":
		if strings.TrimSpace(c.Name) == "" {
			return errors.New("operators password --name NAME, the new password on standard input")
		}
	case "list":
	default:
		return fmt.Errorf("unknown operators command %q: want add, list, password or disable", c.Cmd)
	}
	return nil
}

// Run carries the command out on st and prints what it did. add and
// password read the password from the first line of stdin (never an
// argument, so never in the process list or the shell's history):
// ErrBadPassword, wrapped, when it is unusable. password and disable end
// the operator's console sessions on every hub of the store. add, password
// and disable are appended to the operator record.
func (c OperatorsCommand) Run(ctx context.Context, st store.Operators, stdin io.Reader, stdout io.Writer) error {
	name := strings.TrimSpace(c.Name)
	switch c.Cmd {
	case "add":
		hash, err := ReadPasswordHash(stdin)
		if err != nil {
			return err
		}
		if err := st.AddOperator(ctx, store.Operator{Name: name, Role: c.Role, PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
			return err
		}
		if err := c.record(ctx, st, name, c.Role); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "operator %s added (%s)\n", name, c.Role)
		return err
	case "password":
		hash, err := ReadPasswordHash(stdin)
		if err != nil {
			return err
		}
		if err := st.SetOperatorPassword(ctx, name, hash); err != nil {
			return err
		}
		if err := c.record(ctx, st, name, ""); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "operator %s: password replaced, failed sign-ins cleared, console sessions ended\n", name)
		return err
	case "disable":
		if err := st.DisableOperator(ctx, name); err != nil {
			return err
		}
		if err := c.record(ctx, st, name, ""); err != nil {
			return err
		}
		_, err := fmt.Fprintf(stdout, "operator %s disabled, console sessions ended\n", name)
		return err
	}
	ops, err := st.ListOperators(ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		if ops == nil {
			ops = []store.Operator{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ops)
	}
	return WriteOperators(stdout, ops)
}

// record appends the change of account name to the operator record, as
// the console's own actions are: account.add, account.password or
// account.disable, by c.By. The change is made by then; an entry that
// cannot be written is an error that says so.
func (c OperatorsCommand) record(ctx context.Context, st store.Operators, name, detail string) error {
	by := c.By
	if by == "" {
		by = "cli"
	}
	err := st.RecordOperatorAction(ctx, store.OperatorAction{At: time.Now(), Operator: by, Action: "account." + c.Cmd,
		Target: "operator:" + name, Outcome: "ok", Detail: detail})
	if err != nil {
		return fmt.Errorf("operator %s: %s done, but the operator record could not be written: %w", name, c.Cmd, err)
	}
	return nil
}

// ReadPasswordHash reads a password from the first line of r (at most 1
// KiB) and returns its hash; ErrBadPassword, wrapped, when HashPassword
// refuses it.
func ReadPasswordHash(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	hash, err := HashPassword(strings.TrimRight(line, "\r\n"))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadPassword, err)
	}
	return hash, nil
}

// WriteOperators prints the accounts as a table: name, role, state, when
// made, failed sign-ins; never a hash.
func WriteOperators(w io.Writer, ops []store.Operator) error {
	if len(ops) == 0 {
		_, err := fmt.Fprintln(w, "no operators")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
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
