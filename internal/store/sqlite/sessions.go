package sqlite

import (
	"context"
	"fmt"
	"time"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/store"
)

// The console's sessions (store.ConsoleSessions), with the schema of
// migrations/00006_console_sessions.sql.

// StartConsoleSession stores cs, after ending the expired sessions.
func (s *SQLite) StartConsoleSession(ctx context.Context, cs store.ConsoleSession, seenBefore, startedBefore time.Time) error {
	return s.withTx(ctx, func(conn *sqlite.Conn) error {
		if err := sqlitex.Execute(conn, `DELETE FROM console_sessions WHERE seen < ? OR started < ?`,
			&sqlitex.ExecOptions{Args: []any{seenBefore.UnixNano(), startedBefore.UnixNano()}}); err != nil {
			return fmt.Errorf("store: end expired console sessions: %w", err)
		}
		if err := sqlitex.Execute(conn, `INSERT INTO console_sessions (id, operator, role, csrf, started, seen, flash)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, &sqlitex.ExecOptions{Args: []any{cs.ID, cs.Operator, cs.Role, cs.CSRF,
			cs.Started.UnixNano(), cs.Seen.UnixNano(), cs.Flash}}); err != nil {
			return fmt.Errorf("store: start console session: %w", err)
		}
		return nil
	})
}

// UseConsoleSession returns a live session marked seen at now, or ends an
// expired one.
func (s *SQLite) UseConsoleSession(ctx context.Context, id string, now, seenAfter, startedAfter time.Time) (store.ConsoleSession, error) {
	var (
		cs    store.ConsoleSession
		found bool
	)
	err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		found = false
		if err := sqlitex.Execute(conn, `UPDATE console_sessions SET seen = max(seen, ?) WHERE id = ? AND seen >= ? AND started >= ?
			RETURNING operator, role, csrf, started, seen, flash`, &sqlitex.ExecOptions{
			Args: []any{now.UnixNano(), id, seenAfter.UnixNano(), startedAfter.UnixNano()},
			ResultFunc: func(st *sqlite.Stmt) error {
				cs = store.ConsoleSession{ID: id, Operator: st.ColumnText(0), Role: st.ColumnText(1), CSRF: st.ColumnText(2),
					Started: time.Unix(0, st.ColumnInt64(3)).UTC(), Seen: time.Unix(0, st.ColumnInt64(4)).UTC(), Flash: st.ColumnText(5)}
				found = true
				return nil
			}}); err != nil {
			return fmt.Errorf("store: use console session: %w", err)
		}
		if found {
			return nil
		}
		return endConsoleSession(conn, id)
	})
	if err != nil {
		return store.ConsoleSession{}, err
	}
	if !found {
		return store.ConsoleSession{}, fmt.Errorf("console session: %w", store.ErrNotFound)
	}
	return cs, nil
}

// SetConsoleFlash sets a session's flash message.
func (s *SQLite) SetConsoleFlash(ctx context.Context, id, msg string) error {
	return s.withTx(ctx, func(conn *sqlite.Conn) error {
		if err := sqlitex.Execute(conn, `UPDATE console_sessions SET flash = ? WHERE id = ?`,
			&sqlitex.ExecOptions{Args: []any{msg, id}}); err != nil {
			return fmt.Errorf("store: set console flash: %w", err)
		}
		return nil
	})
}

// TakeConsoleFlash returns a session's flash message and clears it.
func (s *SQLite) TakeConsoleFlash(ctx context.Context, id string) (string, error) {
	var msg string
	err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		msg = ""
		if err := sqlitex.Execute(conn, `SELECT flash FROM console_sessions WHERE id = ?`, &sqlitex.ExecOptions{Args: []any{id},
			ResultFunc: func(st *sqlite.Stmt) error { msg = st.ColumnText(0); return nil }}); err != nil {
			return fmt.Errorf("store: take console flash: %w", err)
		}
		if msg == "" {
			return nil
		}
		if err := sqlitex.Execute(conn, `UPDATE console_sessions SET flash = '' WHERE id = ?`,
			&sqlitex.ExecOptions{Args: []any{id}}); err != nil {
			return fmt.Errorf("store: take console flash: %w", err)
		}
		return nil
	})
	return msg, err
}

// EndConsoleSession ends one session.
func (s *SQLite) EndConsoleSession(ctx context.Context, id string) error {
	return s.withTx(ctx, func(conn *sqlite.Conn) error { return endConsoleSession(conn, id) })
}

func endConsoleSession(conn *sqlite.Conn, id string) error {
	if err := sqlitex.Execute(conn, `DELETE FROM console_sessions WHERE id = ?`, &sqlitex.ExecOptions{Args: []any{id}}); err != nil {
		return fmt.Errorf("store: end console session: %w", err)
	}
	return nil
}
