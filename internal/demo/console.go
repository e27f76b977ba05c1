package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/iceshub/iceshub/internal/console"
	"github.com/iceshub/iceshub/internal/store"
)

// Operator is the console account 'demo --stay' makes: the dpo role, so
// that a newcomer sees every page, the subject access one included (the
// demo's people are fictional).
const Operator = "demo"

// StayForConsole gives the demo's hub (its store st, at base) a console
// account with a new random password, prints where to sign in, and waits
// until ctx ends (Ctrl-C). The password is printed once and kept nowhere
// but as its hash, in the demo's temporary store.
func StayForConsole(ctx context.Context, stdout io.Writer, st store.Operators, base string) error {
	password := console.NewPassword()
	hash, err := console.HashPassword(password)
	if err != nil {
		return err
	}
	if err := st.AddOperator(ctx, store.Operator{Name: Operator, Role: store.RoleDPO, PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\noperators' console: %s%s\n  name:     %s (role dpo)\n  password: %s (one-time: this demo's store is deleted when it stops)\n"+
		"the hub stays up until Ctrl-C.\n", base, console.Prefix, Operator, password)
	<-ctx.Done()
	return nil
}
