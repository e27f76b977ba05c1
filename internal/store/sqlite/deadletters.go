package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

// Dead letters wait for a person. A person either replays one (the
// delivery is published again on its partner's topic, with the same
// idempotency key, so that a partner that already has it creates nothing)
// or discards it with a reason. Either decision is recorded beside the dead
// letter, which itself is never changed or deleted: it is the evidence of
// what the partner refused and why.

const deadLetterColumns = `d.id, d.at, d.recipient, d.kind, d.referral_id, d.idempotency_key, d.status_code, d.partner_answer, d.error,
	r.action, r.decided_by, r.at, r.reason`

func scanDeadLetter(st *sqlite.Stmt) store.DeadLetter {
	d := store.DeadLetter{
		ID: st.ColumnInt64(0), At: parseTS(st.ColumnText(1)), Recipient: st.ColumnText(2), Kind: st.ColumnText(3),
		ReferralID: st.ColumnText(4), IdempotencyKey: st.ColumnText(5), StatusCode: st.ColumnInt(6),
		PartnerAnswer: st.ColumnText(7), Error: st.ColumnText(8),
	}
	if st.ColumnType(9) != sqlite.TypeNull {
		d.Resolution = &store.Resolution{Action: st.ColumnText(9), By: st.ColumnText(10), At: parseTS(st.ColumnText(11)), Reason: st.ColumnText(12)}
	}
	return d
}

// DeadLetters returns every dead letter, oldest first, with its resolution
// if it has one, without payloads.
func (s *SQLite) DeadLetters(ctx context.Context) ([]store.DeadLetter, error) {
	var out []store.DeadLetter
	err := s.read(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters d
		LEFT JOIN dead_letter_resolutions r ON r.dead_letter_id = d.id ORDER BY d.id`, nil, func(st *sqlite.Stmt) error {
		d := scanDeadLetter(st)
		answer, err := s.sealer.OpenOptional([]byte(d.PartnerAnswer))
		if err != nil {
			return err
		}
		d.PartnerAnswer = string(answer)
		out = append(out, d)
		return nil
	})
	return out, err
}

// DeadLetter returns one dead letter with its payload, or ErrNotFound.
func (s *SQLite) DeadLetter(ctx context.Context, id int64) (store.DeadLetter, error) {
	var (
		out   store.DeadLetter
		found bool
	)
	err := s.read(ctx, `SELECT `+deadLetterColumns+`, d.payload FROM dead_letters d
		LEFT JOIN dead_letter_resolutions r ON r.dead_letter_id = d.id WHERE d.id = ?`, []any{id}, func(st *sqlite.Stmt) error {
		out, found = scanDeadLetter(st), true
		sealed := make([]byte, st.ColumnLen(13))
		st.ColumnBytes(13, sealed)
		var err error
		if out.Payload, err = s.sealer.OpenOptional(sealed); err != nil {
			return err
		}
		answer, err := s.sealer.OpenOptional([]byte(out.PartnerAnswer))
		if err != nil {
			return err
		}
		out.PartnerAnswer = string(answer)
		return nil
	})
	if err != nil {
		return store.DeadLetter{}, err
	}
	if !found {
		return store.DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, store.ErrNotFound)
	}
	return out, nil
}

// DiscardDeadLetter records that by discarded dead letter id, and why. It
// returns ErrReasonRequired or ErrByRequired for an empty reason or by,
// ErrNotFound, or ErrResolved when the dead letter was replayed or discarded
// already. The dead letter stays in the store.
func (s *SQLite) DiscardDeadLetter(ctx context.Context, id int64, by, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return store.ErrReasonRequired
	}
	if strings.TrimSpace(by) == "" {
		return store.ErrByRequired
	}
	return s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error {
		if _, err := openDeadLetter(conn, id); err != nil {
			return err
		}
		return resolve(conn, id, store.ActionDiscarded, by, reason)
	})
}

// ReplayDeadLetter publishes dead letter id's delivery again on its
// partner's topic, with the same idempotency key, and records the replay,
// in one transaction. It returns the delivery as published. It returns
// ErrNotFound, ErrResolved when the dead letter was replayed or discarded
// already, or ErrNotReplayable when its payload is not a delivery (it was
// dead-lettered because it could not be decoded) or Recut fails.
func (s *SQLite) ReplayDeadLetter(ctx context.Context, id int64, r store.Replay) (model.Delivery, error) {
	// Read and prepare outside the write transaction: Recut may take its
	// time, and the transaction checks again that the dead letter is open.
	dl, err := s.DeadLetter(ctx, id)
	if err != nil {
		return model.Delivery{}, err
	}
	del, topic, msg, err := store.PrepareReplay(dl, r)
	if err != nil {
		return model.Delivery{}, err
	}
	if err := s.EnsureTopics(topic); err != nil {
		return model.Delivery{}, err
	}
	m, err := s.sealMessage(topic, msg)
	if err != nil {
		return model.Delivery{}, err
	}
	err = s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error {
		if _, err := openDeadLetter(conn, id); err != nil {
			return err
		}
		// Through insertMessage, so that the partner's queue is woken by
		// the commit.
		if err := s.insertMessage(conn, m); err != nil {
			return fmt.Errorf("store: replay: %w", err)
		}
		return resolve(conn, id, store.ActionReplayed, r.By, r.Reason)
	})
	if err != nil {
		return model.Delivery{}, err
	}
	return del, nil
}

// openDeadLetter returns the recipient of dead letter id, or ErrNotFound or
// ErrResolved.
func openDeadLetter(conn *sqlite.Conn, id int64) (string, error) {
	var (
		recipient      string
		found, decided bool
	)
	err := sqlitex.Execute(conn, `SELECT d.recipient, r.action IS NOT NULL FROM dead_letters d
		LEFT JOIN dead_letter_resolutions r ON r.dead_letter_id = d.id WHERE d.id = ?`, &sqlitex.ExecOptions{
		Args: []any{id},
		ResultFunc: func(st *sqlite.Stmt) error {
			recipient, found, decided = st.ColumnText(0), true, st.ColumnBool(1)
			return nil
		}})
	switch {
	case err != nil:
		return "", fmt.Errorf("store: read dead letter %d: %w", id, err)
	case !found:
		return "", fmt.Errorf("dead letter %d: %w", id, store.ErrNotFound)
	case decided:
		return "", fmt.Errorf("dead letter %d: %w", id, store.ErrResolved)
	}
	return recipient, nil
}

func resolve(conn *sqlite.Conn, id int64, action, by, reason string) error {
	if err := sqlitex.Execute(conn, `INSERT INTO dead_letter_resolutions (dead_letter_id, action, decided_by, at, reason) VALUES (?, ?, ?, ?, ?)`,
		&sqlitex.ExecOptions{Args: []any{id, action, strings.TrimSpace(by), ts(time.Time{}), strings.TrimSpace(reason)}}); err != nil {
		return fmt.Errorf("store: record %s dead letter %d: %w", action, id, err)
	}
	return nil
}

// DeadLetterCounts returns the dead letters counted by recipient and kind.
func (s *SQLite) DeadLetterCounts(ctx context.Context) ([]store.DeadLetterCount, error) {
	var out []store.DeadLetterCount
	err := s.read(ctx, `SELECT d.recipient, d.kind, COUNT(*), SUM(r.dead_letter_id IS NULL) FROM dead_letters d
		LEFT JOIN dead_letter_resolutions r ON r.dead_letter_id = d.id GROUP BY d.recipient, d.kind ORDER BY d.recipient, d.kind`, nil,
		func(st *sqlite.Stmt) error {
			out = append(out, store.DeadLetterCount{Recipient: st.ColumnText(0), Kind: st.ColumnText(1), Total: st.ColumnInt64(2), Open: st.ColumnInt64(3)})
			return nil
		})
	return out, err
}
