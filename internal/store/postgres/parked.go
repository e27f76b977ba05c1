package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/store"
)

// Parked deliveries, as in the embedded engine (lanes per partner and
// referral, only a lane's oldest copy attempted), with one addition for
// several hubs: DueParked claims what it returns until the lease passes,
// so that two hubs never attempt the same copy at once, and a hub that
// dies mid-attempt lets it go.

func (w *preparedBatch) applyParking(ctx context.Context, tx execer) error {
	for i, pk := range w.b.Park {
		// ON CONFLICT: a copy offered again after a crash is parked once.
		if _, err := tx.Exec(ctx, `INSERT INTO parked
			(partner, lane, urgent, kind, referral_id, idempotency_key, payload, attempts, next_at, first_failed_at, last_error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (idempotency_key) DO NOTHING`,
			pk.Partner, pk.Lane, pk.Urgent, pk.Kind, pk.ReferralID, pk.IdempotencyKey, w.parked[i], pk.Attempts,
			ms(pk.NextAt), ms(pk.FirstFailed), pk.LastError); err != nil {
			return fmt.Errorf("store: park delivery: %w", err)
		}
	}
	for _, r := range w.b.Reschedule {
		if _, err := tx.Exec(ctx, `UPDATE parked SET attempts = $1, next_at = $2, last_error = $3, claimed_by = NULL, claimed_until = NULL WHERE id = $4`,
			r.Attempts, ms(r.NextAt), r.LastError, r.ID); err != nil {
			return fmt.Errorf("store: reschedule parked delivery: %w", err)
		}
	}
	if len(w.b.Unpark) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM parked WHERE id = ANY($1)`, w.b.Unpark); err != nil {
			return fmt.Errorf("store: unpark delivery: %w", err)
		}
	}
	return nil
}

// LaneBusy reports whether a lane has a parked delivery.
func (p *Postgres) LaneBusy(ctx context.Context, partner, lane string) (bool, error) {
	st, err := p.DeliveryState(ctx, "", partner, lane, "", "")
	return st.LaneBusy, err
}

// DueParked returns up to limit parked deliveries for partner that are
// first in their lane, due at now and not claimed by another hub: urgent
// ones first, then by when they fell due; none of the ids in except (those
// this hub attempts already). It claims them for this hub for the lease,
// so that no other hub attempts them meanwhile: a Reschedule or Unpark
// ends the claim.
func (p *Postgres) DueParked(ctx context.Context, partner string, now time.Time, limit int, except ...int64) ([]store.Parked, error) {
	if limit <= 0 {
		return nil, nil
	}
	if except == nil {
		except = []int64{}
	}
	var out []store.Parked
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `WITH due AS (
				SELECT p.id FROM parked p
				WHERE p.partner = $1 AND p.next_at <= $2 AND NOT (p.id = ANY($3))
				  AND (p.claimed_until IS NULL OR p.claimed_until < now() OR p.claimed_by = $6)
				  AND NOT EXISTS (SELECT 1 FROM parked q WHERE q.partner = p.partner AND q.lane = p.lane AND q.id < p.id)
				ORDER BY p.urgent DESC, p.next_at, p.id
				LIMIT $4
				FOR UPDATE SKIP LOCKED)
			UPDATE parked SET claimed_by = $6, claimed_until = now() + $5 * interval '1 millisecond' FROM due WHERE parked.id = due.id
			RETURNING parked.id, partner, lane, urgent, kind, referral_id, idempotency_key, payload, attempts, next_at, first_failed_at, last_error`,
			partner, ms(now), except, limit, p.opts.Lease.Milliseconds(), p.replica)
		if err != nil {
			return fmt.Errorf("store: claim due parked deliveries: %w", err)
		}
		out, err = pgx.CollectRows(rows, scanParked)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Payload, err = p.sealer.Open(out[i].Payload); err != nil {
			return nil, fmt.Errorf("parked delivery %d: %w", out[i].ID, err)
		}
	}
	// The claim's RETURNING comes in no order: urgent copies first, then
	// by when they fell due, as DueParked promises.
	slices.SortFunc(out, func(a, b store.Parked) int {
		return cmp.Or(-cmp.Compare(boolInt(a.Urgent), boolInt(b.Urgent)), a.NextAt.Compare(b.NextAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// ParkedDeliveries returns every parked delivery, oldest first, without
// payloads.
func (p *Postgres) ParkedDeliveries(ctx context.Context) ([]store.Parked, error) {
	return query(ctx, p, `SELECT id, partner, lane, urgent, kind, referral_id, idempotency_key, ''::bytea, attempts, next_at, first_failed_at, last_error
		FROM parked ORDER BY id`, nil, scanParked)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func scanParked(r pgx.CollectableRow) (store.Parked, error) {
	var pk store.Parked
	var next, first int64
	err := r.Scan(&pk.ID, &pk.Partner, &pk.Lane, &pk.Urgent, &pk.Kind, &pk.ReferralID, &pk.IdempotencyKey, &pk.Payload,
		&pk.Attempts, &next, &first, &pk.LastError)
	pk.NextAt, pk.FirstFailed = time.UnixMilli(next), time.UnixMilli(first)
	return pk, err
}
