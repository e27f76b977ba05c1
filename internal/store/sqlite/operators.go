package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/iceshub/iceshub/internal/store"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// Operator accounts of the console, and the operator record: what each
// operator did, one hash-chained entry per action (store.OperatorAction
// Digest), appended on the one write connection so that the chain is
// linear. Ids are given here, one more than the last, and the last id
// given is kept in operator_record_tip in the same transaction, so that
// verification finds a removed tail as well as a changed, removed or
// reordered entry. The tables: migrations/00005_operators.sql.

const operatorColumns = `name, role, password_hash, disabled, created_at, failed_sign_ins, last_failed_at`

func scanOperator(st *sqlite.Stmt) store.Operator {
	o := store.Operator{Name: st.ColumnText(0), Role: st.ColumnText(1), PasswordHash: st.ColumnText(2), Disabled: st.ColumnInt(3) != 0,
		CreatedAt: parseTS(st.ColumnText(4)), FailedSignIns: st.ColumnInt(5)}
	if at := st.ColumnText(6); at != "" {
		o.LastFailedAt = parseTS(at)
	}
	return o
}

// AddOperator stores a new operator; ErrOperatorExists when the name is
// taken.
func (s *SQLite) AddOperator(ctx context.Context, o store.Operator) error {
	o, err := store.CheckOperator(o)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(conn *sqlite.Conn) error {
		taken := false
		if err := sqlitex.Execute(conn, `SELECT 1 FROM operators WHERE name = ?`, &sqlitex.ExecOptions{Args: []any{o.Name},
			ResultFunc: func(*sqlite.Stmt) error { taken = true; return nil }}); err != nil {
			return fmt.Errorf("store: read operator: %w", err)
		}
		if taken {
			return fmt.Errorf("operator %q: %w", o.Name, store.ErrOperatorExists)
		}
		disabled := 0
		if o.Disabled {
			disabled = 1
		}
		if err := sqlitex.Execute(conn, `INSERT INTO operators (`+operatorColumns+`) VALUES (?, ?, ?, ?, ?, 0, '')`,
			&sqlitex.ExecOptions{Args: []any{o.Name, o.Role, o.PasswordHash, disabled, ts(o.CreatedAt)}}); err != nil {
			return fmt.Errorf("store: add operator: %w", err)
		}
		return nil
	})
}

// Operator returns the operator of that name, or ErrNotFound.
func (s *SQLite) Operator(ctx context.Context, name string) (store.Operator, error) {
	var (
		o     store.Operator
		found bool
	)
	err := s.read(ctx, `SELECT `+operatorColumns+` FROM operators WHERE name = ?`, []any{name}, func(st *sqlite.Stmt) error {
		o, found = scanOperator(st), true
		return nil
	})
	if err != nil {
		return store.Operator{}, err
	}
	if !found {
		return store.Operator{}, fmt.Errorf("operator %q: %w", name, store.ErrNotFound)
	}
	return o, nil
}

// ListOperators returns every operator, by name.
func (s *SQLite) ListOperators(ctx context.Context) ([]store.Operator, error) {
	var out []store.Operator
	err := s.read(ctx, `SELECT `+operatorColumns+` FROM operators ORDER BY name`, nil, func(st *sqlite.Stmt) error {
		out = append(out, scanOperator(st))
		return nil
	})
	return out, err
}

// updateOperator runs one UPDATE of the operator name, and ends its
// console sessions when endSessions; ErrNotFound when it changed no row.
func (s *SQLite) updateOperator(ctx context.Context, name string, endSessions bool, set string, args ...any) error {
	return s.withTx(ctx, func(conn *sqlite.Conn) error {
		if err := sqlitex.Execute(conn, `UPDATE operators SET `+set+` WHERE name = ?`,
			&sqlitex.ExecOptions{Args: append(args, name)}); err != nil {
			return fmt.Errorf("store: update operator: %w", err)
		}
		if conn.Changes() == 0 {
			return fmt.Errorf("operator %q: %w", name, store.ErrNotFound)
		}
		if endSessions {
			if err := sqlitex.Execute(conn, `DELETE FROM console_sessions WHERE operator = ?`,
				&sqlitex.ExecOptions{Args: []any{name}}); err != nil {
				return fmt.Errorf("store: end the operator's console sessions: %w", err)
			}
		}
		return nil
	})
}

// DisableOperator stops an operator signing in and ends its sessions.
func (s *SQLite) DisableOperator(ctx context.Context, name string) error {
	return s.updateOperator(ctx, name, true, `disabled = 1`)
}

// SetOperatorPassword replaces an operator's password hash, clears its
// failed sign-ins and ends its sessions.
func (s *SQLite) SetOperatorPassword(ctx context.Context, name, hash string) error {
	if hash == "" {
		return errors.New("store: empty password hash")
	}
	return s.updateOperator(ctx, name, true, `password_hash = ?, failed_sign_ins = 0, last_failed_at = ''`, hash)
}

// SignInFailed counts a failed sign-in and returns the count since the
// last success.
func (s *SQLite) SignInFailed(ctx context.Context, name string, at time.Time) (int, error) {
	var n int
	err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		n = 0
		if err := sqlitex.Execute(conn, `UPDATE operators SET failed_sign_ins = failed_sign_ins + 1, last_failed_at = ? WHERE name = ?`,
			&sqlitex.ExecOptions{Args: []any{ts(at), name}}); err != nil {
			return fmt.Errorf("store: count failed sign-in: %w", err)
		}
		if conn.Changes() == 0 {
			return fmt.Errorf("operator %q: %w", name, store.ErrNotFound)
		}
		return sqlitex.Execute(conn, `SELECT failed_sign_ins FROM operators WHERE name = ?`, &sqlitex.ExecOptions{Args: []any{name},
			ResultFunc: func(st *sqlite.Stmt) error { n = st.ColumnInt(0); return nil }})
	})
	return n, err
}

// SignInSucceeded clears the failed sign-ins.
func (s *SQLite) SignInSucceeded(ctx context.Context, name string) error {
	return s.updateOperator(ctx, name, false, `failed_sign_ins = 0, last_failed_at = ''`)
}

const operatorRecordColumns = `id, at, operator, action, target, outcome, detail, prev_hash, hash`

func scanOperatorAction(st *sqlite.Stmt) store.OperatorAction {
	return store.OperatorAction{ID: st.ColumnInt64(0), At: parseTS(st.ColumnText(1)), Operator: st.ColumnText(2), Action: st.ColumnText(3),
		Target: st.ColumnText(4), Outcome: st.ColumnText(5), Detail: st.ColumnText(6), PrevHash: st.ColumnText(7), Hash: st.ColumnText(8)}
}

// RecordOperatorAction appends a to the operator record.
func (s *SQLite) RecordOperatorAction(ctx context.Context, a store.OperatorAction) error {
	if err := store.CheckOperatorAction(a); err != nil {
		return err
	}
	return s.withTx(ctx, func(conn *sqlite.Conn) error {
		var last int64
		prev := ""
		if err := sqlitex.Execute(conn, `SELECT COALESCE((SELECT last_id FROM operator_record_tip WHERE one = 1), 0),
			COALESCE((SELECT hash FROM operator_record ORDER BY id DESC LIMIT 1), '')`, &sqlitex.ExecOptions{
			ResultFunc: func(st *sqlite.Stmt) error { last, prev = st.ColumnInt64(0), st.ColumnText(1); return nil }}); err != nil {
			return fmt.Errorf("store: read the head of the operator record: %w", err)
		}
		e := store.NextOperatorAction(last, prev, a)
		if err := sqlitex.Execute(conn, `INSERT INTO operator_record (`+operatorRecordColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			&sqlitex.ExecOptions{Args: []any{e.ID, ts(e.At), e.Operator, e.Action, e.Target, e.Outcome, e.Detail, e.PrevHash, e.Hash}}); err != nil {
			return fmt.Errorf("store: record operator action: %w", err)
		}
		if err := sqlitex.Execute(conn, `DELETE FROM operator_record_tip`, nil); err != nil {
			return fmt.Errorf("store: record operator action: %w", err)
		}
		if err := sqlitex.Execute(conn, `INSERT INTO operator_record_tip (one, last_id) VALUES (1, ?)`,
			&sqlitex.ExecOptions{Args: []any{e.ID}}); err != nil {
			return fmt.Errorf("store: record operator action: %w", err)
		}
		return nil
	})
}

// OperatorActions returns the newest limit entries, newest first.
func (s *SQLite) OperatorActions(ctx context.Context, limit int) ([]store.OperatorAction, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []store.OperatorAction
	err := s.read(ctx, `SELECT `+operatorRecordColumns+` FROM operator_record ORDER BY id DESC LIMIT ?`, []any{limit},
		func(st *sqlite.Stmt) error {
			out = append(out, scanOperatorAction(st))
			return nil
		})
	return out, err
}

// VerifyOperatorRecord recomputes the operator record's chain
// (store.CheckOperatorLink) in one snapshot.
func (s *SQLite) VerifyOperatorRecord(ctx context.Context) (store.VerifyReport, error) {
	if s.closed.Load() {
		return store.VerifyReport{}, store.ErrClosed
	}
	conn, err := s.readers.Take(ctx)
	if err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: reader: %w", err)
	}
	defer s.readers.Put(conn)
	end := sqlitex.Transaction(conn) // one snapshot of the record and its tip
	defer end(&err)
	var tip int64
	if err = sqlitex.Execute(conn, `SELECT COALESCE((SELECT last_id FROM operator_record_tip WHERE one = 1), 0)`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error { tip = st.ColumnInt64(0); return nil }}); err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the operator record: %w", err)
	}
	check := store.NewChainCheck(0, "")
	if err = sqlitex.Execute(conn, `SELECT `+operatorRecordColumns+` FROM operator_record ORDER BY id`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error { store.CheckOperatorLink(check, scanOperatorAction(st)); return nil }}); err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the operator record: %w", err)
	}
	return check.Report(tip), nil
}

// DeliveredSince returns, per recipient and hour, the deliveries partners
// accepted from since on.
func (s *SQLite) DeliveredSince(ctx context.Context, since time.Time) ([]store.DeliveredHour, error) {
	// Timestamps are stored as RFC 3339 in UTC: the first 13 characters
	// are the hour.
	var out []store.DeliveredHour
	err := s.read(ctx, `SELECT recipient, substr(at, 1, 13), COUNT(*) FROM receipts WHERE at >= ?
		GROUP BY recipient, substr(at, 1, 13) ORDER BY recipient, substr(at, 1, 13)`, []any{ts(since)}, func(st *sqlite.Stmt) error {
		h, err := time.Parse("2006-01-02T15", st.ColumnText(1))
		if err != nil {
			return fmt.Errorf("store: receipt hour %q: %w", st.ColumnText(1), err)
		}
		out = append(out, store.DeliveredHour{Recipient: st.ColumnText(0), Hour: h, Count: st.ColumnInt64(2)})
		return nil
	})
	return out, err
}

// DeliveredTotals returns every delivery partners accepted, by recipient.
func (s *SQLite) DeliveredTotals(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.read(ctx, `SELECT recipient, COUNT(*) FROM receipts GROUP BY recipient`, nil, func(st *sqlite.Stmt) error {
		out[st.ColumnText(0)] = st.ColumnInt64(1)
		return nil
	})
	return out, err
}

// ReferralsByCorrelation returns the ids of the referrals whose disclosure
// record names correlation id id, oldest first. It reads the whole record
// (there is no index by correlation id: the console's search is rare, the
// record's writes are not).
func (s *SQLite) ReferralsByCorrelation(ctx context.Context, id string) ([]string, error) {
	if id == "" {
		return nil, nil
	}
	var out []string
	err := s.read(ctx, `SELECT referral_id FROM disclosures WHERE correlation_id = ? GROUP BY referral_id ORDER BY MIN(id)`, []any{id},
		func(st *sqlite.Stmt) error {
			out = append(out, st.ColumnText(0))
			return nil
		})
	return out, err
}
