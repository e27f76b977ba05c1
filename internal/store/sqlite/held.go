package sqlite

import (
	"context"
	"fmt"

	"github.com/iceshub/iceshub/internal/store"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// Held messages wait for a person, like dead letters. A person resolves one
// once: routes it to a chosen council (no council covered the postcode),
// releases it once the person's express permission is recorded, or closes it
// with a reason. The resolution is recorded beside the hold, which itself is
// never changed, in the same transaction as what the resolution does (the
// copies it queues, the council it records for the referral), so that
// either both are written or neither.

// The tables are created by migrations/00001_initial.sql.

const holdColumns = `h.id, h.at, h.referral_id, h.kind, h.route, h.reason,
	r.action, r.decided_by, r.at, r.reason, r.recipient, r.permission_by, r.permission_at, r.evidence`

func scanHold(st *sqlite.Stmt) store.Hold {
	h := store.Hold{ID: st.ColumnInt64(0), At: parseTS(st.ColumnText(1)), ReferralID: st.ColumnText(2), Kind: st.ColumnText(3),
		Route: st.ColumnText(4), Reason: st.ColumnText(5)}
	if st.ColumnType(6) != sqlite.TypeNull {
		r := &store.HoldResolution{Action: st.ColumnText(6), By: st.ColumnText(7), At: parseTS(st.ColumnText(8)), Reason: st.ColumnText(9),
			Recipient: st.ColumnText(10)}
		if by := st.ColumnText(11); by != "" {
			r.Permission = &store.PermissionRecord{RecordedBy: by, RecordedAt: parseTS(st.ColumnText(12)), Evidence: st.ColumnText(13)}
		}
		h.Resolution = r
	}
	return h
}

// Held returns the messages held for review and not yet resolved, oldest
// first, without payloads.
func (s *SQLite) Held(ctx context.Context) ([]store.Hold, error) {
	return s.holds(ctx, false)
}

// AllHeld returns every held message, resolved or not, oldest first, each
// with its resolution, without payloads.
func (s *SQLite) AllHeld(ctx context.Context) ([]store.Hold, error) {
	return s.holds(ctx, true)
}

func (s *SQLite) holds(ctx context.Context, all bool) ([]store.Hold, error) {
	where := ` WHERE r.held_id IS NULL`
	if all {
		where = ``
	}
	var out []store.Hold
	err := s.read(ctx, `SELECT `+holdColumns+` FROM held h LEFT JOIN held_resolutions r ON r.held_id = h.id`+where+` ORDER BY h.id`, nil,
		func(st *sqlite.Stmt) error {
			out = append(out, scanHold(st))
			return nil
		})
	return out, err
}

// HeldMessage returns one held message with its payload and resolution, or
// ErrNotFound.
func (s *SQLite) HeldMessage(ctx context.Context, id int64) (store.Hold, error) {
	var (
		out   store.Hold
		found bool
	)
	err := s.read(ctx, `SELECT `+holdColumns+`, h.payload FROM held h LEFT JOIN held_resolutions r ON r.held_id = h.id WHERE h.id = ?`,
		[]any{id}, func(st *sqlite.Stmt) error {
			out, found = scanHold(st), true
			sealed := make([]byte, st.ColumnLen(14))
			st.ColumnBytes(14, sealed)
			var err error
			out.Payload, err = s.sealer.OpenOptional(sealed)
			return err
		})
	if err != nil {
		return store.Hold{}, err
	}
	if !found {
		return store.Hold{}, fmt.Errorf("held message %d: %w", id, store.ErrNotFound)
	}
	return out, nil
}

// ResolveHold records res, a person's decision about held message id, and
// writes b, what the decision does (the copies it queues, the holds and
// references it records), in one transaction. It returns ErrByRequired,
// ErrReasonRequired (a route or close needs a reason), ErrPermissionRequired
// (a release needs the permission record), ErrNotFound, or ErrHoldResolved
// when the message was resolved already; then nothing is written.
func (s *SQLite) ResolveHold(ctx context.Context, id int64, res store.HoldResolution, b store.Batch) error {
	res, err := store.CheckHoldResolution(res)
	if err != nil {
		return err
	}
	if err := s.EnsureTopics(batchTopics(b)...); err != nil {
		return err
	}
	msgs, err := s.sealMessages(b.Messages)
	if err != nil {
		return err
	}
	permBy, permAt, evidence := "", "", ""
	if p := res.Permission; p != nil {
		permBy, permAt, evidence = p.RecordedBy, ts(p.RecordedAt), p.Evidence
	}
	return s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error {
		if err := openHold(conn, id); err != nil {
			return err
		}
		if err := s.writeBatch(conn, b, msgs); err != nil {
			return err
		}
		if err := sqlitex.Execute(conn, `INSERT INTO held_resolutions
			(held_id, action, decided_by, at, reason, recipient, permission_by, permission_at, evidence)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, &sqlitex.ExecOptions{Args: []any{
			id, res.Action, res.By, ts(res.At), res.Reason, res.Recipient, permBy, permAt, evidence,
		}}); err != nil {
			return fmt.Errorf("store: record %s held message %d: %w", res.Action, id, err)
		}
		return nil
	})
}

// openHold returns ErrNotFound or ErrHoldResolved unless held message id
// waits for a decision.
func openHold(conn *sqlite.Conn, id int64) error {
	var (
		found  bool
		action string
	)
	err := sqlitex.Execute(conn, `SELECT COALESCE(r.action, '') FROM held h LEFT JOIN held_resolutions r ON r.held_id = h.id WHERE h.id = ?`,
		&sqlitex.ExecOptions{Args: []any{id}, ResultFunc: func(st *sqlite.Stmt) error {
			found, action = true, st.ColumnText(0)
			return nil
		}})
	switch {
	case err != nil:
		return fmt.Errorf("store: read held message %d: %w", id, err)
	case !found:
		return fmt.Errorf("held message %d: %w", id, store.ErrNotFound)
	case action != "":
		return fmt.Errorf("held message %d: %w (%s)", id, store.ErrHoldResolved, action)
	}
	return nil
}

// HeldCounts returns the number of held messages not yet resolved per
// route.
func (s *SQLite) HeldCounts(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.read(ctx, `SELECT h.route, COUNT(*) FROM held h LEFT JOIN held_resolutions r ON r.held_id = h.id
		WHERE r.held_id IS NULL GROUP BY h.route`, nil, func(st *sqlite.Stmt) error {
		out[st.ColumnText(0)] = st.ColumnInt64(1)
		return nil
	})
	return out, err
}
