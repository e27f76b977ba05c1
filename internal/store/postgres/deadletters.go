package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

const deadLetterColumns = `d.id, d.at, d.recipient, d.kind, d.referral_id, d.idempotency_key, d.status_code, d.partner_answer, d.error,
	r.action, r.decided_by, r.at, r.reason`

func (p *Postgres) scanDeadLetter(row pgx.CollectableRow, withPayload bool) (store.DeadLetter, error) {
	var d store.DeadLetter
	var at string
	var answer, payload []byte
	var action, by, rat, reason *string
	dest := []any{&d.ID, &at, &d.Recipient, &d.Kind, &d.ReferralID, &d.IdempotencyKey, &d.StatusCode, &answer, &d.Error,
		&action, &by, &rat, &reason}
	if withPayload {
		dest = append(dest, &payload)
	}
	if err := row.Scan(dest...); err != nil {
		return d, err
	}
	d.At = store.ParseTimestamp(at)
	if action != nil {
		d.Resolution = &store.Resolution{Action: *action, By: *by, At: store.ParseTimestamp(*rat), Reason: *reason}
	}
	plain, err := p.sealer.OpenOptional(answer)
	if err != nil {
		return d, err
	}
	d.PartnerAnswer = string(plain)
	if d.Payload, err = p.sealer.OpenOptional(payload); err != nil {
		return d, err
	}
	return d, nil
}

// DeadLetters returns every dead letter, oldest first, with its resolution
// if it has one, without payloads.
func (p *Postgres) DeadLetters(ctx context.Context) ([]store.DeadLetter, error) {
	return query(ctx, p, `SELECT `+deadLetterColumns+` FROM dead_letters d
		LEFT JOIN dead_letter_resolutions r ON r.dead_letter_id = d.id ORDER BY d.id`, nil,
		func(row pgx.CollectableRow) (store.DeadLetter, error) { return p.scanDeadLetter(row, false) })
}

// DeadLetter returns one dead letter with its payload, or ErrNotFound.
func (p *Postgres) DeadLetter(ctx context.Context, id int64) (store.DeadLetter, error) {
	out, err := query(ctx, p, `SELECT `+deadLetterColumns+`, d.payload FROM dead_letters d
		LEFT JOIN dead_letter_resolutions r ON r.dead_letter_id = d.id WHERE d.id = $1`, []any{id},
		func(row pgx.CollectableRow) (store.DeadLetter, error) { return p.scanDeadLetter(row, true) })
	if err != nil {
		return store.DeadLetter{}, err
	}
	if len(out) == 0 {
		return store.DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, store.ErrNotFound)
	}
	return out[0], nil
}

// DiscardDeadLetter records that by discarded dead letter id, and why.
func (p *Postgres) DiscardDeadLetter(ctx context.Context, id int64, by, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return store.ErrReasonRequired
	}
	if strings.TrimSpace(by) == "" {
		return store.ErrByRequired
	}
	return p.inTx(ctx, func(tx pgx.Tx) error {
		if err := openDeadLetter(ctx, tx, id); err != nil {
			return err
		}
		return resolve(ctx, tx, id, store.ActionDiscarded, by, reason)
	})
}

// ReplayDeadLetter publishes dead letter id's delivery again on its
// partner's topic, with the same idempotency key, and records the replay,
// in one transaction (store.PrepareReplay says what it checks).
func (p *Postgres) ReplayDeadLetter(ctx context.Context, id int64, r store.Replay) (model.Delivery, error) {
	dl, err := p.DeadLetter(ctx, id)
	if err != nil {
		return model.Delivery{}, err
	}
	del, topic, msg, err := store.PrepareReplay(dl, r)
	if err != nil {
		return model.Delivery{}, err
	}
	if err := p.EnsureTopics(topic); err != nil {
		return model.Delivery{}, err
	}
	m, err := p.sealMessage(topic, msg)
	if err != nil {
		return model.Delivery{}, err
	}
	err = p.inTx(ctx, func(tx pgx.Tx) error {
		if err := openDeadLetter(ctx, tx, id); err != nil {
			return err
		}
		if err := insertMessages(ctx, tx, []outgoing{m}); err != nil {
			return fmt.Errorf("store: replay: %w", err)
		}
		return resolve(ctx, tx, id, store.ActionReplayed, r.By, r.Reason)
	})
	if err != nil {
		return model.Delivery{}, err
	}
	p.published(map[string]bool{topic: true})
	return del, nil
}

// openDeadLetter locks dead letter id's decision, or returns ErrNotFound
// or ErrResolved.
func openDeadLetter(ctx context.Context, tx pgx.Tx, id int64) error {
	var decided bool
	err := tx.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM dead_letter_resolutions r WHERE r.dead_letter_id = d.id)
		FROM dead_letters d WHERE d.id = $1 FOR UPDATE`, id).Scan(&decided)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("dead letter %d: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: read dead letter %d: %w", id, err)
	case decided:
		return fmt.Errorf("dead letter %d: %w", id, store.ErrResolved)
	}
	return nil
}

func resolve(ctx context.Context, tx pgx.Tx, id int64, action, by, reason string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO dead_letter_resolutions (dead_letter_id, action, decided_by, at, reason) VALUES ($1, $2, $3, $4, $5)`,
		id, action, strings.TrimSpace(by), store.Timestamp(time.Time{}), strings.TrimSpace(reason)); err != nil {
		return fmt.Errorf("store: record %s dead letter %d: %w", action, id, err)
	}
	return nil
}

// DeadLetterCounts returns the dead letters counted by recipient and kind.
func (p *Postgres) DeadLetterCounts(ctx context.Context) ([]store.DeadLetterCount, error) {
	return query(ctx, p, `SELECT d.recipient, d.kind, COUNT(*), COUNT(*) FILTER (WHERE r.dead_letter_id IS NULL) FROM dead_letters d
		LEFT JOIN dead_letter_resolutions r ON r.dead_letter_id = d.id GROUP BY d.recipient, d.kind ORDER BY d.recipient, d.kind`, nil,
		func(row pgx.CollectableRow) (store.DeadLetterCount, error) {
			var c store.DeadLetterCount
			return c, row.Scan(&c.Recipient, &c.Kind, &c.Total, &c.Open)
		})
}
