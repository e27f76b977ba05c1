package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// replaysPruned is how many expired keys each SeenBefore deletes, at most.
const replaysPruned = 4

// SeenBefore records key until until and reports whether it was already
// recorded with an until after now (internal/auth's ReplayStore), durably
// and for every hub on the database. Each call also deletes a few keys
// expired by now.
func (p *Postgres) SeenBefore(ctx context.Context, key [32]byte, now, until time.Time) (bool, error) {
	var seen bool
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM replays WHERE key IN
			(SELECT key FROM replays WHERE until_ms <= $1 ORDER BY until_ms LIMIT $2 FOR UPDATE SKIP LOCKED)`, now.UnixMilli(), replaysPruned); err != nil {
			return fmt.Errorf("store: prune replays: %w", err)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO replays (key, until_ms) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET until_ms = excluded.until_ms WHERE replays.until_ms <= $3`,
			key[:], until.UnixMilli(), now.UnixMilli())
		if err != nil {
			return fmt.Errorf("store: record replay key: %w", err)
		}
		// Nothing inserted or updated: the key is there, not expired.
		seen = tag.RowsAffected() == 0
		return nil
	})
	if err != nil {
		return false, err
	}
	return seen, nil
}
