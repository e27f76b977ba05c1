package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/store"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// Parked deliveries: a copy that failed transiently leaves its partner's
// queue (so the queue moves on to other referrals) and waits here until its
// next attempt. Copies about the same referral to the same partner form a
// lane: while a lane has a parked copy, later copies in it park behind it,
// and only the oldest copy of a lane is ever attempted, so a cancellation
// never overtakes the order it cancels while other referrals keep flowing.
// The tables are created by migrations/00001_initial.sql.

func ms(t time.Time) int64 { return t.UnixMilli() }

func (s *SQLite) applyParking(conn *sqlite.Conn, b store.Batch) error {
	for _, p := range b.Park {
		payload, err := s.sealer.Seal(p.Payload)
		if err != nil {
			return err
		}
		// ON CONFLICT: a copy offered again after a crash is parked once.
		if err := sqlitex.Execute(conn, `INSERT INTO parked
			(partner, lane, urgent, kind, referral_id, idempotency_key, payload, attempts, next_at, first_failed_at, last_error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(idempotency_key) DO NOTHING`, &sqlitex.ExecOptions{Args: []any{
			p.Partner, p.Lane, boolInt(p.Urgent), p.Kind, p.ReferralID, p.IdempotencyKey, payload, p.Attempts,
			ms(p.NextAt), ms(p.FirstFailed), p.LastError,
		}}); err != nil {
			return fmt.Errorf("store: park delivery: %w", err)
		}
	}
	for _, r := range b.Reschedule {
		if err := sqlitex.Execute(conn, `UPDATE parked SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?`,
			&sqlitex.ExecOptions{Args: []any{r.Attempts, ms(r.NextAt), r.LastError, r.ID}}); err != nil {
			return fmt.Errorf("store: reschedule parked delivery: %w", err)
		}
	}
	for _, id := range b.Unpark {
		if err := sqlitex.Execute(conn, `DELETE FROM parked WHERE id = ?`, &sqlitex.ExecOptions{Args: []any{id}}); err != nil {
			return fmt.Errorf("store: unpark delivery: %w", err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// LaneBusy reports whether a lane has a parked delivery, which a new copy in
// that lane must wait behind.
func (s *SQLite) LaneBusy(ctx context.Context, partner, lane string) (bool, error) {
	busy := false
	err := s.read(ctx, `SELECT 1 FROM parked WHERE partner = ? AND lane = ? LIMIT 1`, []any{partner, lane}, func(*sqlite.Stmt) error {
		busy = true
		return nil
	})
	return busy, err
}

// DueParked returns up to limit parked deliveries for partner that are first
// in their lane and due at now: urgent ones first, then by when they are due;
// none of the ids in except (those a caller is attempting already).
func (s *SQLite) DueParked(ctx context.Context, partner string, now time.Time, limit int, except ...int64) ([]store.Parked, error) {
	var out []store.Parked
	// Urgent copies first, then routine ones, each in the order they fell
	// due: two range reads of parked_due_by_urgency, so that a backlog of a
	// million parked copies costs no more per read than a few.
	for _, urgent := range []int{1, 0} {
		if len(out) >= limit {
			break
		}
		args := []any{partner, urgent, ms(now)}
		for _, id := range except {
			args = append(args, id)
		}
		want := limit - len(out)
		err := s.read(ctx, `SELECT p.id, p.partner, p.lane, p.urgent, p.kind, p.referral_id, p.idempotency_key, p.payload,
				p.attempts, p.next_at, p.first_failed_at, p.last_error
			FROM parked p
			WHERE p.partner = ? AND p.urgent = ? AND p.next_at <= ?`+notIn("p.id", len(except))+`
			  AND p.id = (SELECT MIN(q.id) FROM parked q WHERE q.partner = p.partner AND q.lane = p.lane)
			ORDER BY p.next_at, p.id`, args, func(st *sqlite.Stmt) error {
			if want == 0 {
				return errEnoughRows
			}
			want--
			p := scanParked(st)
			var err error
			if p.Payload, err = s.sealer.Open(p.Payload); err != nil {
				return fmt.Errorf("parked delivery %d: %w", p.ID, err)
			}
			out = append(out, p)
			return nil
		})
		if err != nil && !errors.Is(err, errEnoughRows) {
			return out, err
		}
	}
	return out, nil
}

// notIn returns " AND column NOT IN (?, ...)" for n values, or "" for none.
func notIn(column string, n int) string {
	if n == 0 {
		return ""
	}
	return " AND " + column + " NOT IN (?" + strings.Repeat(", ?", n-1) + ")"
}

// ParkedDeliveries returns every parked delivery, oldest first, without
// payloads: what operators see waiting.
func (s *SQLite) ParkedDeliveries(ctx context.Context) ([]store.Parked, error) {
	var out []store.Parked
	err := s.read(ctx, `SELECT id, partner, lane, urgent, kind, referral_id, idempotency_key, '', attempts, next_at, first_failed_at, last_error
		FROM parked ORDER BY id`, nil, func(st *sqlite.Stmt) error {
		out = append(out, scanParked(st))
		return nil
	})
	return out, err
}

func scanParked(st *sqlite.Stmt) store.Parked {
	payload := make([]byte, st.ColumnLen(7))
	st.ColumnBytes(7, payload)
	return store.Parked{
		ID: st.ColumnInt64(0), Partner: st.ColumnText(1), Lane: st.ColumnText(2), Urgent: st.ColumnInt(3) != 0,
		Kind: st.ColumnText(4), ReferralID: st.ColumnText(5), IdempotencyKey: st.ColumnText(6), Payload: payload,
		Attempts: st.ColumnInt(8), NextAt: time.UnixMilli(st.ColumnInt64(9)), FirstFailed: time.UnixMilli(st.ColumnInt64(10)),
		LastError: st.ColumnText(11),
	}
}
