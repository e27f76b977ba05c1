package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/store"
)

const holdColumns = `h.id, h.at, h.referral_id, h.kind, h.route, h.reason,
	r.action, r.decided_by, r.at, r.reason, r.recipient, r.permission_by, r.permission_at, r.evidence`

func (p *Postgres) scanHold(row pgx.CollectableRow, withPayload bool) (store.Hold, error) {
	var h store.Hold
	var at string
	var action, by, rat, reason, recipient, permBy, permAt, evidence *string
	var payload []byte
	dest := []any{&h.ID, &at, &h.ReferralID, &h.Kind, &h.Route, &h.Reason,
		&action, &by, &rat, &reason, &recipient, &permBy, &permAt, &evidence}
	if withPayload {
		dest = append(dest, &payload)
	}
	if err := row.Scan(dest...); err != nil {
		return h, err
	}
	h.At = store.ParseTimestamp(at)
	if action != nil {
		r := &store.HoldResolution{Action: *action, By: *by, At: store.ParseTimestamp(*rat), Reason: *reason, Recipient: *recipient}
		if *permBy != "" {
			r.Permission = &store.PermissionRecord{RecordedBy: *permBy, RecordedAt: store.ParseTimestamp(*permAt), Evidence: *evidence}
		}
		h.Resolution = r
	}
	var err error
	h.Payload, err = p.sealer.OpenOptional(payload)
	return h, err
}

// Held returns the messages held for review and not yet resolved, oldest
// first, without payloads.
func (p *Postgres) Held(ctx context.Context) ([]store.Hold, error) { return p.holds(ctx, false) }

// AllHeld returns every held message, resolved or not, oldest first.
func (p *Postgres) AllHeld(ctx context.Context) ([]store.Hold, error) { return p.holds(ctx, true) }

func (p *Postgres) holds(ctx context.Context, all bool) ([]store.Hold, error) {
	where := ` WHERE r.held_id IS NULL`
	if all {
		where = ``
	}
	return query(ctx, p, `SELECT `+holdColumns+` FROM held h LEFT JOIN held_resolutions r ON r.held_id = h.id`+where+` ORDER BY h.id`, nil,
		func(row pgx.CollectableRow) (store.Hold, error) { return p.scanHold(row, false) })
}

// HeldMessage returns one held message with its payload and resolution, or
// ErrNotFound.
func (p *Postgres) HeldMessage(ctx context.Context, id int64) (store.Hold, error) {
	out, err := query(ctx, p, `SELECT `+holdColumns+`, h.payload FROM held h LEFT JOIN held_resolutions r ON r.held_id = h.id WHERE h.id = $1`,
		[]any{id}, func(row pgx.CollectableRow) (store.Hold, error) { return p.scanHold(row, true) })
	if err != nil {
		return store.Hold{}, err
	}
	if len(out) == 0 {
		return store.Hold{}, fmt.Errorf("held message %d: %w", id, store.ErrNotFound)
	}
	return out[0], nil
}

// ResolveHold records res, a person's decision about held message id, and
// writes b, what the decision does, in one transaction
// (store.CheckHoldResolution says what it refuses).
func (p *Postgres) ResolveHold(ctx context.Context, id int64, res store.HoldResolution, b store.Batch) error {
	res, err := store.CheckHoldResolution(res)
	if err != nil {
		return err
	}
	w, err := p.prepareBatch(b)
	if err != nil {
		return err
	}
	permBy, permAt, evidence := "", "", ""
	if pr := res.Permission; pr != nil {
		permBy, permAt, evidence = pr.RecordedBy, store.Timestamp(pr.RecordedAt), pr.Evidence
	}
	err = p.inTx(ctx, func(tx pgx.Tx) error {
		if err := openHold(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO held_resolutions
			(held_id, action, decided_by, at, reason, recipient, permission_by, permission_at, evidence)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			id, res.Action, res.By, store.Timestamp(res.At), res.Reason, res.Recipient, permBy, permAt, evidence); err != nil {
			return fmt.Errorf("store: record %s held message %d: %w", res.Action, id, err)
		}
		return w.writeIn(ctx, tx)
	})
	if err != nil {
		return err
	}
	p.published(topicsOf(w.msgs))
	return nil
}

// openHold locks held message id, or returns ErrNotFound or
// ErrHoldResolved.
func openHold(ctx context.Context, tx pgx.Tx, id int64) error {
	var action string
	err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT r.action FROM held_resolutions r WHERE r.held_id = h.id), '')
		FROM held h WHERE h.id = $1 FOR UPDATE`, id).Scan(&action)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("held message %d: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: read held message %d: %w", id, err)
	case action != "":
		return fmt.Errorf("held message %d: %w (%s)", id, store.ErrHoldResolved, action)
	}
	return nil
}

// HeldCounts returns the number of held messages not yet resolved per
// route.
func (p *Postgres) HeldCounts(ctx context.Context) (map[string]int64, error) {
	type count struct {
		route string
		n     int64
	}
	rows, err := query(ctx, p, `SELECT h.route, COUNT(*) FROM held h LEFT JOIN held_resolutions r ON r.held_id = h.id
		WHERE r.held_id IS NULL GROUP BY h.route`, nil, func(row pgx.CollectableRow) (count, error) {
		var c count
		return c, row.Scan(&c.route, &c.n)
	})
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, c := range rows {
		out[c.route] = c.n
	}
	return out, nil
}
