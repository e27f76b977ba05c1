package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

// Retention deletes what the embedded engine's does (its retention.go says
// why each may go). With several hubs on one database it runs on one at a
// time: ApplyRetention takes an advisory lock for its run, and a hub that
// finds it taken leaves this round to the hub that has it. A hub that dies
// mid-run lets the lock go with its connection.

// retentionLock is the advisory lock key of the retention run.
const retentionLock int64 = 0x1ce5_0001

// ApplyRetention deletes what pol allows, each kind in its own
// transaction. When another hub is applying retention it returns an empty
// report at once.
func (p *Postgres) ApplyRetention(ctx context.Context, pol store.RetentionPolicy) (store.RetentionReport, error) {
	rep := store.RetentionReport{Messages: map[string]int{}}
	if p.closed.Load() {
		return rep, store.ErrClosed
	}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return rep, fmt.Errorf("store: retention: %w", err)
	}
	defer conn.Release()
	var leader bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, retentionLock).Scan(&leader); err != nil {
		return rep, fmt.Errorf("store: retention: take the lock: %w", err)
	}
	if !leader {
		return rep, nil
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, retentionLock)
	}()
	if !pol.MessagesBefore.IsZero() {
		// No message to delete: a message is deleted as soon as it is
		// handled (subscriber.go), and one not handled is never deleted.
		before, text := pol.MessagesBefore, cutoffText(pol.MessagesBefore)
		if rep.IdempotencyKeys, err = p.purge(ctx, "idempotency records", `DELETE FROM idempotency WHERE created_at < $1 AND NOT starts_with(key, $2)`,
			before, store.StatisticsKeyPrefix); err != nil {
			return rep, err
		}
		if rep.Referrals, err = p.purge(ctx, "records of closed orders", `WITH gone AS (DELETE FROM referrals r
				WHERE r.status IN ($2, $3) AND r.updated_at < $1
				  AND NOT EXISTS (SELECT 1 FROM parked p WHERE p.referral_id = r.referral_id) RETURNING referral_id),
				cases AS (DELETE FROM case_refs c USING gone WHERE c.referral_id = gone.referral_id)
				SELECT referral_id FROM gone`, text, string(model.StatusCollected), string(model.StatusCancelled)); err != nil {
			return rep, err
		}
		if rep.Receipts, err = p.purge(ctx, "delivery receipts", `DELETE FROM receipts WHERE at < $1`, text); err != nil {
			return rep, err
		}
	}
	if !pol.SubjectsInactiveSince.IsZero() {
		if rep.Disclosures, err = p.PruneInactiveSubjects(ctx, pol.SubjectsInactiveSince); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// purge runs one retention statement and returns how many rows it
// deleted (or, for a statement that returns rows, how many it returned).
func (p *Postgres) purge(ctx context.Context, what, sql string, args ...any) (int, error) {
	var n int
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, args...)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: delete old %s: %w", what, err)
	}
	return n, nil
}

// cutoffText is cutoff as store.Timestamp writes times, to the second:
// every time written in that second or later sorts at or after it, so
// text times compare with it in order.
func cutoffText(cutoff time.Time) string {
	return cutoff.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05")
}
