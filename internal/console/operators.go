package console

import (
	"bufio"
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

// ReadPasswordHash reads a password from the first line of r (at most 1
// KiB: `iceshub operators add` reads standard input, so that a password
// is never in the process list or the shell's history) and returns its
// hash; ErrBadPassword, wrapped, when HashPassword refuses it.
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
