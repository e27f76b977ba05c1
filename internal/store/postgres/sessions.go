package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/store"
)

// The console's sessions (store.ConsoleSessions), with the schema of
// migrations/00003_console_sessions.sql: one table every hub reads, so
// that an operator's requests may go to any hub.

// StartConsoleSession stores cs, after ending the expired sessions.
func (p *Postgres) StartConsoleSession(ctx context.Context, cs store.ConsoleSession, seenBefore, startedBefore time.Time) error {
	return p.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE seen < $1 OR started < $2`,
			seenBefore.UnixNano(), startedBefore.UnixNano()); err != nil {
			return fmt.Errorf("store: end expired console sessions: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO console_sessions (id, operator, role, csrf, started, seen, flash)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, cs.ID, cs.Operator, cs.Role, cs.CSRF,
			cs.Started.UnixNano(), cs.Seen.UnixNano(), cs.Flash); err != nil {
			return fmt.Errorf("store: start console session: %w", err)
		}
		return nil
	})
}

// UseConsoleSession returns a live session marked seen at now, or ends an
// expired one. Hubs' clocks may differ a little: seen never goes back.
func (p *Postgres) UseConsoleSession(ctx context.Context, id string, now, seenAfter, startedAfter time.Time) (store.ConsoleSession, error) {
	var (
		cs    store.ConsoleSession
		found bool
	)
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		var started, seen int64
		cs, found = store.ConsoleSession{ID: id}, false
		err := tx.QueryRow(ctx, `UPDATE console_sessions SET seen = GREATEST(seen, $2) WHERE id = $1 AND seen >= $3 AND started >= $4
			RETURNING operator, role, csrf, started, seen, flash`, id, now.UnixNano(), seenAfter.UnixNano(), startedAfter.UnixNano()).
			Scan(&cs.Operator, &cs.Role, &cs.CSRF, &started, &seen, &cs.Flash)
		if errors.Is(err, pgx.ErrNoRows) {
			// Expired (or unknown): ended in this transaction, which
			// commits.
			if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE id = $1`, id); err != nil {
				return fmt.Errorf("store: end console session: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: use console session: %w", err)
		}
		cs.Started, cs.Seen, found = time.Unix(0, started).UTC(), time.Unix(0, seen).UTC(), true
		return nil
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
func (p *Postgres) SetConsoleFlash(ctx context.Context, id, msg string) error {
	if _, err := p.pool.Exec(ctx, `UPDATE console_sessions SET flash = $2 WHERE id = $1`, id, msg); err != nil {
		return fmt.Errorf("store: set console flash: %w", err)
	}
	return nil
}

// TakeConsoleFlash returns a session's flash message and clears it; of
// two hubs taking it at once, one gets it.
func (p *Postgres) TakeConsoleFlash(ctx context.Context, id string) (string, error) {
	var msg string
	err := p.pool.QueryRow(ctx, `UPDATE console_sessions s SET flash = '' FROM
		(SELECT id, flash FROM console_sessions WHERE id = $1 AND flash <> '' FOR UPDATE) old
		WHERE s.id = old.id RETURNING old.flash`, id).Scan(&msg)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: take console flash: %w", err)
	}
	return msg, nil
}

// EndConsoleSession ends one session.
func (p *Postgres) EndConsoleSession(ctx context.Context, id string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM console_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: end console session: %w", err)
	}
	return nil
}
